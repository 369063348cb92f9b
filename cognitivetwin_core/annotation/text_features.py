"""Per-message text features shared by the trajectory annotator and the pattern labeler.

Both need the words of a message; tokenising is most of the cost of annotating an import,
so it happens once per message and on a bounded window: the first WINDOW_CHARS characters.
A 100 kB paste is then measured like its opening, which is what a reader meets, and
annotation stays linear in messages rather than in megabytes (a type-token ratio over a
fixed window is also comparable across message lengths).

`compute_text_features` does the work; `text_features` is the same behind a small cache
keyed by the text, for callers that ask for one message's features more than once (the
annotator and the labeler called separately). The import computes each message's
features once and hands them to both, so it uses the uncached function.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache

WINDOW_CHARS = 1500

# ASCII punctuation (but the apostrophe of "don't") becomes a space; str.translate and
# str.split are several times faster than a regex tokenizer on long texts.
_PUNCTUATION = string.punctuation.replace("'", "")
_TO_SPACES = str.maketrans(_PUNCTUATION, " " * len(_PUNCTUATION))
_FENCED_CODE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_DROP_CODE_CHARACTERS = str.maketrans("", "", "{}();=<>[]")
# The same two tables for ASCII text (most messages) as bytes: bytes.translate is a plain
# 256-entry lookup, two to three times faster than str.translate's per-character mapping.
_ASCII_TO_SPACES = bytes.maketrans(_PUNCTUATION.encode("ascii"), b" " * len(_PUNCTUATION))
_ASCII_CODE_CHARACTERS = b"{}();=<>[]"


@dataclass(frozen=True, slots=True)
class TextFeatures:
    window: str  # the first WINDOW_CHARS characters
    prose: str  # the window, lower-cased, without fenced code
    words: frozenset[str]  # distinct lower-case words of the window (code included)
    word_count: int
    has_fence: bool
    code_characters: int  # characters inside fences plus code punctuation outside them


def compute_text_features(text: str) -> TextFeatures:
    window = text[:WINDOW_CHARS]
    lower = window.lower()
    ascii_only = lower.isascii()
    if ascii_only:
        spaced = lower.encode("ascii").translate(_ASCII_TO_SPACES).decode("ascii")
    else:
        spaced = lower.translate(_TO_SPACES)
    tokens = spaced.split()
    has_fence = "```" in text
    if has_fence and "```" in window:
        prose = _FENCED_CODE.sub(" ", lower)
        fenced = len(lower) - len(prose)
    else:
        prose = lower
        fenced = 0
    if ascii_only:
        code_punctuation = len(prose) - len(prose.encode("ascii").translate(None, _ASCII_CODE_CHARACTERS))
    else:
        code_punctuation = len(prose) - len(prose.translate(_DROP_CODE_CHARACTERS))
    return TextFeatures(window, prose, frozenset(tokens), len(tokens), has_fence, fenced + code_punctuation)


text_features = lru_cache(maxsize=256)(compute_text_features)
