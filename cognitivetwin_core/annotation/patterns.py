"""The 12 conversational patterns: names, a weak rule-based multi-label labeler, vectors.

The labeler is deliberately simple (deterministic rules: word sets, phrases and a few
regular expressions over the opening window of a message, see text_features) so it is
fast enough to run on every imported message and easy to reason about. Explicit labels carried by the data (`Message.patterns`) always win.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cognitivetwin_core.annotation.text_features import _TO_SPACES, TextFeatures, text_features
from cognitivetwin_core.conversation import Message

PATTERN_NAMES: tuple[str, ...] = (
    "question",
    "instruction",
    "clarification",
    "code",
    "debugging",
    "explanation",
    "brainstorming",
    "planning",
    "comparison",
    "correction",
    "acknowledgement",
    "reflection",
)

# Bump when a rule changes: stored annotations are recomputed when this differs.
LABELER_VERSION = 1

PATTERN_INDEX = {name: index for index, name in enumerate(PATTERN_NAMES)}

# Lines that look like source code even without a fence (a pasted snippet).
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |#include\b|function\s*\w*\(|const |let |var |"
    r"public |private |return\b|for \(|while \(|if \(|SELECT\b.*\bFROM\b|\$ \w|>>> |"
    r"[\w.\[\]]+\s*=\s*[\w\"'(\[{].*;?\s*$|[}\]);]+\s*$|.*\)\s*\{\s*$)",
    re.MULTILINE,
)
_WORD = re.compile(r"[a-z0-9_']+")
_SENTENCE_BREAK = re.compile(r"[.!?;:\n]+")

# Each rule: single words (matched against the message's word set, so whole words only)
# and phrases (matched as lower-case substrings). Sets and `in` keep this fast enough to
# label every message of a 100k-message import; Python regex alternations were 10x slower.
_WORDS: dict[str, frozenset[str]] = {
    "debugging": frozenset(
        [
            "error",
            "errors",
            "traceback",
            "exception",
            "exceptions",
            "bug",
            "bugs",
            "fail",
            "crash",
            "crashes",
            "crashed",
            "crashing",
            "segfault",
            "segfaults",
            "debug",
            "debugging",
            "breakpoint",
            "fails",
            "failing",
            "failed",
            "broken",
            "regression",
            "stacktrace",
            "hangs",
            "deadlock",
            "oom",
            "leak",
        ]
    ),
    "explanation": frozenset(["because", "essentially", "therefore", "hence"]),
    "brainstorming": frozenset(
        ["brainstorm", "brainstorming", "ideas", "idea", "alternatively", "possibilities", "spitball"]
    ),
    "planning": frozenset(
        ["plan", "plans", "planning", "roadmap", "milestone", "milestones", "timeline", "schedule", "checklist"]
    ),
    "comparison": frozenset(
        ["vs", "versus", "comparison", "compared", "whereas", "unlike", "tradeoff", "tradeoffs", "trade-off"]
    ),
    "clarification": frozenset(["clarify", "clarification"]),
    "reflection": frozenset(["hindsight", "retrospect"]),
}
_PHRASES: dict[str, tuple[str, ...]] = {
    "instruction": (
        "please ",
        "can you ",
        "could you ",
        "would you ",
        "i need you to ",
        "i want you to ",
        "i'd like you to ",
    ),
    "clarification": (
        "what do you mean",
        "do you mean",
        "did you mean",
        "to be clear",
        "when you say",
        "i meant",
        "what i meant",
        "are you asking",
        "is that what you",
        "which one do you",
    ),
    "debugging": (
        "stack trace",
        "doesn't work",
        "does not work",
        "isn't working",
        "not working",
        "off by one",
        "off-by-one",
        "returns none",
        "returns null",
        "undefined is not",
        "null pointer",
        "won't start",
    ),
    "explanation": (
        "the reason is",
        "the reason why",
        "this means",
        "which means",
        "that means",
        "works by",
        "under the hood",
        "in other words",
        "that's why",
        "this is why",
        "that is why",
        "in short",
        "the idea is",
        "the key idea",
        "think of it as",
        "for example",
        "for instance",
        "this happens when",
        "is caused by",
        "so that",
        "that's the signature",
        "points at",
    ),
    "brainstorming": (
        "what if",
        "another option",
        "other options",
        "some options",
        "a few options",
        "we could also",
        "you could also",
        "could also",
        "could try",
        "throw out some",
        "off the top of my head",
        "a few approaches",
        "a few things",
        "some approaches",
    ),
    "planning": (
        "next step",
        "step 1",
        "step one",
        "first,",
        "after that",
        "by friday",
        "by monday",
        "by next week",
        "by the end of",
        "phase 1",
        "to-do",
        "todo",
        "let's start by",
        "we'll start by",
        "here's the plan",
        "break it down",
        "break this down",
        "in stages",
        "weeks before",
        "step two",
    ),
    "comparison": (
        "compared to",
        "better than",
        "worse than",
        "faster than",
        "slower than",
        "difference between",
        "pros and cons",
        "trade-off",
        "rather than",
        "on the other hand",
        "which is better",
        "which one is",
        "instead of",
        "similar to",
        "either will",
    ),
    "correction": (
        "that's not right",
        "that is not right",
        "that's not correct",
        "that is not correct",
        "that's wrong",
        "that is wrong",
        "that's incorrect",
        "that is incorrect",
        "you're wrong",
        "you are wrong",
        "you're mistaken",
        "not quite",
        "my mistake",
        "my bad",
        "i was wrong",
        "i stand corrected",
        "correction:",
        "one correction",
        "i misspoke",
        "sorry, i meant",
        "should have been",
        "that's a typo",
        "let me correct",
        "you're quite right",
        "you're right, ",
        "your student is right",
        "not entirely wrong",
    ),
    "reflection": (
        "looking back",
        "on reflection",
        "reflecting on",
        "i realize",
        "i realise",
        "i realized",
        "i realised",
        "i've been thinking",
        "i have been thinking",
        "i've noticed",
        "i have noticed",
        "i've learned",
        "i have learned",
        "i learned",
        "i learnt",
        "i wonder if",
        "i wonder whether",
        "occurs to me",
        "occurred to me",
        "lessons learned",
        "lesson learned",
        "what i took away",
        "i keep coming back to",
        "i used to think",
        "made me think",
        "i'm starting to think",
        "i should have",
        "uncomfortable thing",
    ),
}
_QUESTION_STARTS = frozenset(
    [
        "what",
        "why",
        "how",
        "when",
        "where",
        "who",
        "which",
        "whose",
        "is",
        "are",
        "can",
        "could",
        "would",
        "should",
        "do",
        "does",
        "did",
        "will",
        "have",
        "has",
        "any",
    ]
)
_IMPERATIVES = frozenset(
    [
        "write",
        "create",
        "make",
        "give",
        "list",
        "show",
        "implement",
        "add",
        "remove",
        "delete",
        "build",
        "generate",
        "convert",
        "summarize",
        "summarise",
        "translate",
        "rewrite",
        "refactor",
        "draft",
        "outline",
        "describe",
        "install",
        "run",
        "update",
        "rename",
        "format",
        "sort",
        "use",
        "tell",
        "help",
        "explain",
        "set",
        "suggest",
        "fix",
        "check",
        "find",
        "compare",
        "walk",
    ]
)
_ACKNOWLEDGEMENTS = frozenset(
    [
        "thanks",
        "thank",
        "thx",
        "ty",
        "ok",
        "okay",
        "cool",
        "perfect",
        "great",
        "awesome",
        "understood",
        "noted",
        "nice",
        "yep",
        "yeah",
        "marvellous",
        "wonderful",
        "brilliant",
        "lovely",
        "excellent",
        "phew",
    ]
)
_ACKNOWLEDGEMENT_PHRASES = (
    "got it",
    "sounds good",
    "makes sense",
    "that makes sense",
    "that worked",
    "it works",
    "works now",
    "i see",
    "ah, i see",
    "ah i see",
    "fair enough",
    "appreciate",
    "that's it",
    "that is perfect",
    "that is brilliant",
    "this is wonderful",
    "this is marvellous",
    "this is very",
    "that is very",
)
_CORRECTION_STARTS = ("no,", "no.", "nope", "actually,", "actually ", "wait.", "wait,")


def _index_phrases() -> dict[str, tuple[tuple[str, str], ...]]:
    """key word -> ((pattern, phrase), ...): a phrase is searched only when its longest (so
    usually rarest) word occurs in the message."""
    index: dict[str, list[tuple[str, str]]] = {}
    for name, phrases in _PHRASES.items():
        for phrase in phrases:
            key = max(_WORD.findall(phrase), key=len)
            index.setdefault(key, []).append((name, phrase))
    return {word: tuple(entries) for word, entries in index.items()}


_PHRASE_INDEX = _index_phrases()
_PHRASE_FIRST_WORDS = frozenset(_PHRASE_INDEX)


def _sentence_starts(lower: str) -> set[str]:
    starts = set()
    for sentence in _SENTENCE_BREAK.split(lower):
        first = sentence.split(None, 1)
        if first:
            starts.add(first[0].strip(_START_QUOTES))
    return starts


_START_QUOTES = "'\"*-(`"
_BREAKS = ".!?;:\n"  # the characters of _SENTENCE_BREAK


def _opens_a_sentence(lower: str, word: str) -> bool:
    """Whether `word` is in `_sentence_starts(lower)`: some occurrence of it, with only quote
    characters around it, is the first whitespace-separated token after a sentence break.
    Finding the word's occurrences is much cheaper than splitting every sentence."""
    end_of_text = len(lower)
    size = len(word)
    at = lower.find(word)
    while at >= 0:
        left = at
        while left and lower[left - 1] in _START_QUOTES:
            left -= 1
        right = at + size
        while right < end_of_text and lower[right] in _START_QUOTES:
            right += 1
        if right == end_of_text or lower[right] in _BREAKS or lower[right].isspace():
            before = left - 1
            while before >= 0 and lower[before] not in _BREAKS and lower[before].isspace():
                before -= 1
            if before < 0 or lower[before] in _BREAKS:
                return True
        at = lower.find(word, at + 1)
    return False


def label_patterns(text: str, role: str = "user") -> list[str]:
    """Weak multi-label rules; returns names in PATTERN_NAMES order.

    `role` matters little: tool output is never a question, instruction or acknowledgement.
    """
    return names_from_mask(label_mask(text, role))


_BIT = {name: 1 << index for index, name in enumerate(PATTERN_NAMES)}
_WORD_BITS = tuple((_BIT[name], vocabulary) for name, vocabulary in _WORDS.items())


def _inner_words(phrase: str) -> frozenset[str]:
    """The words a text must contain (as text_features tokenizes it) wherever it contains
    the phrase: those with a separator on both sides inside the phrase ("the" and "end" of
    "by the end of"; not "so" of "so that", which "also that" contains)."""
    spaced = phrase.translate(_TO_SPACES)
    pieces = spaced.split(" ")
    return frozenset(piece for piece in pieces[1:-1] if piece)


# key word -> ((bit, phrase, inner words), ...): a phrase is searched only when its key word
# and its inner words are all among the message's words; this never changes a result.
_PHRASE_BITS = {
    word: tuple((_BIT[name], phrase, _inner_words(phrase)) for name, phrase in entries)
    for word, entries in _PHRASE_INDEX.items()
}
_QUESTION, _INSTRUCTION, _CODE, _DEBUGGING, _ACKNOWLEDGEMENT, _CORRECTION = (
    _BIT[name] for name in ("question", "instruction", "code", "debugging", "acknowledgement", "correction")
)
_NOT_FOR_TOOLS = ~(_QUESTION | _INSTRUCTION | _ACKNOWLEDGEMENT | _BIT["clarification"])


def label_mask(text: str, role: str = "user", features: TextFeatures | None = None) -> int:
    """`label_patterns` as a bit mask (bit i = PATTERN_NAMES[i]); `features` are the text's
    own when the caller already computed them."""
    if not text or text.isspace():
        return 0
    if features is None:
        features = text_features(text)
    lower = features.prose
    words = features.words
    found = 0
    if features.has_fence or ("\n" in text and len(_CODE_LINE.findall(features.window)) >= 2):
        # Fenced code, or an unfenced paste: two or more lines that look like source code.
        found = _CODE
    for bit, vocabulary in _WORD_BITS:
        if not vocabulary.isdisjoint(words):
            found |= bit
    for word in _PHRASE_FIRST_WORDS.intersection(words):
        for bit, phrase, inner in _PHRASE_BITS[word]:
            if not found & bit and inner <= words and phrase in lower:
                found |= bit
    window = features.window
    if "Error" in window or "Exception" in window:
        found |= _DEBUGGING
    opening = lower.lstrip()
    first_word = opening.split(None, 1)[0].strip(",.!'\"") if opening else ""
    if "?" in lower or first_word in _QUESTION_STARTS:
        found |= _QUESTION
    if not found & _INSTRUCTION and not _IMPERATIVES.isdisjoint(words):
        candidates = _IMPERATIVES.intersection(words)
        if "'" in lower:
            # A sentence may open with 'fix' (quoted): the tokenizer keeps its apostrophes.
            candidates |= _IMPERATIVES.intersection([word.strip("'") for word in words if "'" in word])
        for word in candidates:
            if _opens_a_sentence(lower, word):
                found |= _INSTRUCTION
                break
    if len(text) <= 400 and (first_word in _ACKNOWLEDGEMENTS or opening.startswith(_ACKNOWLEDGEMENT_PHRASES)):
        # A long message opening with "great," is an answer, not an acknowledgement.
        found |= _ACKNOWLEDGEMENT
    if opening.startswith(_CORRECTION_STARTS):
        found |= _CORRECTION
    if role == "tool":
        found &= _NOT_FOR_TOOLS
    return found


def patterns_for(message: Message) -> list[str]:
    """The message's patterns: its explicit labels when the data gave some, else the rules."""
    if message.patterns is not None:
        return [name for name in PATTERN_NAMES if name in set(message.patterns)]
    return label_patterns(message.content, message.role)


def pattern_mask_for(message: Message, features: TextFeatures | None = None) -> int:
    """`pattern_mask(patterns_for(message))`, with the message's features if already computed."""
    if message.patterns is not None:
        return pattern_mask(message.patterns)
    return label_mask(message.content, message.role, features)


def pattern_vector(names: Iterable[str]) -> list[float]:
    """12 floats (0.0 or 1.0) in PATTERN_NAMES order; unknown names are ignored."""
    chosen = set(names)
    return [1.0 if name in chosen else 0.0 for name in PATTERN_NAMES]


def pattern_mask(names: Iterable[str]) -> int:
    """The names as a bit mask (bit i = PATTERN_NAMES[i]), as the workspace stores them."""
    mask = 0
    for name in names:
        index = PATTERN_INDEX.get(name)
        if index is not None:
            mask |= 1 << index
    return mask


def names_from_mask(mask: int) -> list[str]:
    return [name for index, name in enumerate(PATTERN_NAMES) if mask >> index & 1]
