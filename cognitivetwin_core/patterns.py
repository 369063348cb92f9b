"""The 12 conversational patterns: names, a weak rule-based multi-label labeler, vectors.

The labeler is deliberately simple (deterministic regular expressions over the prose and
the code of a message) so it is fast enough to run on every imported message and easy to
reason about. Explicit labels carried by the data (`Message.patterns`) always win.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .conversation import Message

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

_FLAGS = re.IGNORECASE | re.MULTILINE

_FENCED_CODE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
# Lines that look like source code even without a fence (a pasted snippet).
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \S+ import |#include\b|function\s*\w*\(|const |let |var |"
    r"public |private |return\b|for \(|while \(|if \(|SELECT\b.*\bFROM\b|\$ \w|>>> |"
    r"[\w.\[\]]+\s*=\s*[\w\"'(\[{].*;?\s*$|[}\]);]+\s*$|.*\)\s*\{\s*$)",
    re.MULTILINE,
)

_RULES: dict[str, re.Pattern[str]] = {
    "question": re.compile(
        r"\?|^\s*(?:what|why|how|when|where|who|which|whose|is|are|can|could|would|should|"
        r"do|does|did|will|have|has)\b[^.!\n]*$",
        _FLAGS,
    ),
    "instruction": re.compile(
        r"(?:^|[.!]\s+|\bplease\s+|\bcan you\s+|\bcould you\s+|\bi need you to\s+|\bi want you to\s+)"
        r"(?:write|create|make|give|list|show|implement|add|remove|delete|build|generate|convert|"
        r"summari[sz]e|translate|rewrite|refactor|draft|outline|describe|set up|install|run|"
        r"update|rename|format|sort|use|tell me|help me|walk me through|explain)\b",
        _FLAGS,
    ),
    "clarification": re.compile(
        r"\b(?:what do you mean|do you mean|did you mean|to clarify|just to be clear|just to clarify|"
        r"to be clear|could you clarify|can you clarify|when you say|i meant|what i meant|"
        r"are you asking|in other words,? you|which one do you|is that what you)\b",
        _FLAGS,
    ),
    "debugging": re.compile(
        r"\b(?:error|errors|traceback|exception|stack ?trace|bug|bugs|crash(?:es|ed|ing)?|"
        r"segfault|debug(?:ging)?|breakpoint|doesn't work|does not work|isn't working|not working|"
        r"fails?|failing|failed|broken|\w+Error|\w+Exception|undefined is not|null pointer|"
        r"returns? (?:none|null|nan)|off[- ]by[- ]one|regression)\b",
        _FLAGS,
    ),
    "explanation": re.compile(
        r"\b(?:because|the reason (?:is|why)|this means|which means|that means|works by|"
        r"under the hood|in other words|that's why|this is why|that is why|in short|"
        r"the idea is|the key (?:idea|point) is|essentially|think of it as|for example|"
        r"for instance|this happens when|is caused by)\b",
        _FLAGS,
    ),
    "brainstorming": re.compile(
        r"\b(?:brainstorm\w*|ideas?\b|what if|alternatively|another option|other options|"
        r"some options|a few options|we could also|you could also|could try|possibilit(?:y|ies)|"
        r"spitball\w*|throw(?:ing)? out some|off the top of my head|wild idea)",
        _FLAGS,
    ),
    "planning": re.compile(
        r"\b(?:plan|plans|planning|roadmap|milestones?|timeline|schedule|next steps?|"
        r"step \d|step one|first,|then,? we|after that|by (?:monday|tuesday|wednesday|thursday|"
        r"friday|next week|the end of)|phase \d|to-?do list|let's start by|we'll start by|"
        r"here's the plan|break (?:it|this) down)\b",
        _FLAGS,
    ),
    "comparison": re.compile(
        r"\b(?:vs\.?|versus|compared (?:to|with)|comparison|better than|worse than|faster than|"
        r"slower than|difference between|differences|pros and cons|trade-?offs?|rather than|"
        r"whereas|on the other hand|which is better|which one is|instead of|similar to|"
        r"unlike)\b",
        _FLAGS,
    ),
    "correction": re.compile(
        r"(?:\b(?:that's|that is|this is|it's|you're|you are) (?:not (?:right|correct|quite right)|"
        r"wrong|incorrect|mistaken)\b|\bnot quite\b|\bmy mistake\b|\bmy bad\b|\bi was wrong\b|"
        r"\bi stand corrected\b|\bcorrection:|\bi misspoke\b|\bsorry, i meant\b|\bactually, (?:it|that|the|you|i)\b|"
        r"^\s*no,|\bshould have been\b|\bthat's a typo\b|\blet me correct\b)",
        _FLAGS,
    ),
    "acknowledgement": re.compile(
        r"\A\s*(?:thanks|thank you|thx|ty\b|got it|ok\b|okay|cool|perfect|great|awesome|"
        r"understood|sounds good|makes sense|that makes sense|nice|that worked|it works|works now|"
        r"i see|ah,? i see|ah,? right|right,? that|fair enough|noted|appreciate)",
        re.IGNORECASE,
    ),
    "reflection": re.compile(
        r"\b(?:looking back|in hindsight|in retrospect|on reflection|reflecting on|"
        r"i (?:realize|realise|realized|realised)|i('ve| have) (?:been thinking|noticed|learned|learnt)|"
        r"i (?:learned|learnt)|i wonder (?:if|whether)|it (?:occurs|occurred) to me|"
        r"lessons? (?:learned|learnt)|what i took away|i keep coming back to|"
        r"i used to think|made me think|i'm starting to think)",
        _FLAGS,
    ),
}


def _split_code(text: str) -> tuple[str, bool]:
    """(prose without fenced code, whether the message carries code)."""
    prose = _FENCED_CODE.sub(" ", text)
    has_code = len(prose) != len(text)
    if not has_code:
        # An unfenced paste: two or more lines that look like source code.
        has_code = len(_CODE_LINE.findall(text)) >= 2
    return prose, has_code


def label_patterns(text: str, role: str = "user") -> list[str]:
    """Weak multi-label rules; returns names in PATTERN_NAMES order.

    `role` matters little: tool output is never a question, instruction or acknowledgement.
    """
    if not text or not text.strip():
        return []
    prose, has_code = _split_code(text)
    found = set()
    if has_code:
        found.add("code")
    for name, rule in _RULES.items():
        target = text if name == "debugging" else prose
        if rule.search(target):
            found.add(name)
    if "acknowledgement" in found and len(prose) > 400:
        # A long message opening with "great," is an answer, not an acknowledgement.
        found.discard("acknowledgement")
    if role == "tool":
        found -= {"question", "instruction", "acknowledgement", "clarification"}
    return [name for name in PATTERN_NAMES if name in found]


def patterns_for(message: Message) -> list[str]:
    """The message's patterns: its explicit labels when the data gave some, else the rules."""
    if message.patterns is not None:
        return [name for name in PATTERN_NAMES if name in set(message.patterns)]
    return label_patterns(message.content, message.role)


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
