"""Stylometric features of a message: the measurable axes a style signature should explain.

Phase 2 regresses these from the 256-d style signature (a small auxiliary loss), so that
the signature's axes mean something a person can read; the playground shows the
regression's prediction as the signature's "stylometric readout".

Every feature is a deterministic function of the text, squashed into [0, 1] by a fixed
transform (no corpus statistics), so values are comparable across datasets.
Pure Python: importing this module loads nothing heavy.
"""

from __future__ import annotations

import math
import re

STYLOMETRIC_NAMES: tuple[str, ...] = (
    "length",  # log-scaled character count
    "sentence_length",  # mean words per sentence
    "word_length",  # mean characters per word
    "punctuation_rate",  # punctuation marks per character
    "question_rate",  # share of sentences that end with '?'
    "exclamation_rate",  # share of sentences that end with '!'
    "code_fraction",  # share of characters inside code (fences, inline code, code-like lines)
    "list_use",  # share of lines that are list items
    "uppercase_rate",  # share of letters that are upper case
    "line_breaks",  # newlines per sentence
    "vocabulary_richness",  # distinct words / words
    "first_person_rate",  # share of words that are I/me/my/we/our
)

_WORD = re.compile(r"[A-Za-z0-9_']+")
_FENCE = re.compile(r"```.*?(?:```|$)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import|return |for .*:|if .*:|#include|[{}]\s*$|\w+\s*=\s*\S.*;?\s*$|.*\)\s*[;{]\s*$)"
)
_PUNCTUATION = re.compile(r"[^\w\s]")
_FIRST_PERSON = {"i", "me", "my", "mine", "we", "us", "our", "ours", "i'm", "i've", "i'd", "i'll"}


def _squash(value: float, scale: float) -> float:
    """Map [0, inf) onto [0, 1): value/(value+scale), 0.5 at `scale`."""
    return value / (value + scale) if value > 0 else 0.0


def code_fraction(text: str) -> float:
    if not text:
        return 0.0
    code_chars = sum(len(m.group(0)) for m in _FENCE.finditer(text))
    rest = _FENCE.sub("", text)
    code_chars += sum(len(m.group(0)) for m in _INLINE_CODE.finditer(rest))
    rest = _INLINE_CODE.sub("", rest)
    code_chars += sum(len(line) for line in rest.splitlines() if _CODE_LINE.match(line))
    return min(1.0, code_chars / len(text))


def stylometric_features(text: str) -> list[float]:
    """The features of STYLOMETRIC_NAMES, in that order, each in [0, 1]."""
    text = text or ""
    stripped = text.strip()
    if not stripped:
        return [0.0] * len(STYLOMETRIC_NAMES)
    words = _WORD.findall(stripped)
    word_count = len(words)
    prose = _FENCE.sub(" ", stripped)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n{2,}", prose) if s.strip()] or [prose]
    sentence_count = len(sentences)
    ends = [s.rstrip()[-1:] for s in sentences]
    lines = [line for line in stripped.splitlines() if line.strip()]
    letters = [c for c in stripped if c.isalpha()]
    lowered = [w.lower() for w in words]
    values = {
        "length": min(1.0, math.log1p(len(stripped)) / math.log1p(4000)),
        "sentence_length": _squash(word_count / sentence_count, 15.0),
        "word_length": _squash(sum(len(w) for w in words) / word_count, 5.0) if words else 0.0,
        "punctuation_rate": min(1.0, 5.0 * len(_PUNCTUATION.findall(stripped)) / len(stripped)),
        "question_rate": ends.count("?") / sentence_count,
        "exclamation_rate": ends.count("!") / sentence_count,
        "code_fraction": code_fraction(stripped),
        "list_use": sum(1 for line in lines if _LIST_ITEM.match(line)) / len(lines) if lines else 0.0,
        "uppercase_rate": sum(1 for c in letters if c.isupper()) / len(letters) if letters else 0.0,
        "line_breaks": _squash(stripped.count("\n") / sentence_count, 1.0),
        "vocabulary_richness": len(set(lowered)) / word_count if words else 0.0,
        "first_person_rate": min(1.0, 5.0 * sum(1 for w in lowered if w in _FIRST_PERSON) / word_count)
        if words
        else 0.0,
    }
    return [float(values[name]) for name in STYLOMETRIC_NAMES]


def stylometric_dict(text: str) -> dict[str, float]:
    return dict(zip(STYLOMETRIC_NAMES, stylometric_features(text)))


# Pictographs, dingbats and flag letters (not the invisible joiners); outside STYLOMETRIC_NAMES, because
# adding an axis would change every Phase 2 model's regression head.
_EMOJI = re.compile("[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff]")


def emoji_count(text: str) -> int:
    """How many emoji characters `text` has (a joined emoji counts each visible part)."""
    return len(_EMOJI.findall(text or ""))
