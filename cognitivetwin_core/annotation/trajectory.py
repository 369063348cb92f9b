"""5D trajectory annotation of a conversation's messages (docs/data-and-model.md), a pure function.

For message i of N: depth i/(N-1); sibling_order from the role; homogeneity, the lexical
cosine similarity to the previous message (binary bag of words, so identical text gives 1
and disjoint vocabularies 0); temporal position from timestamps (or depth); complexity,
a score in [0,1] from length, vocabulary richness, sentence length and code content.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cognitivetwin_core.annotation.text_features import TextFeatures, text_features
from cognitivetwin_core.conversation import Conversation, Message

# Bump when a formula changes: stored annotations are recomputed when this differs.
ALGORITHM_VERSION = 1

PHASE_NAMES: tuple[str, ...] = (
    "opening",
    "context gathering",
    "problem exploration",
    "solution development",
    "refinement",
    "closing",
)
# Right-inclusive upper bounds of phases 0..4; anything above is phase 5.
PHASE_UPPER_BOUNDS = (0.10, 0.25, 0.50, 0.75, 0.90)

COORDINATE_NAMES = ("depth", "sibling_order", "homogeneity", "temporal", "complexity")
ROLE_CODES = {"system": 0.0, "user": 0.33, "assistant": 0.67, "tool": 1.0}


@dataclass(frozen=True)
class TurnTrajectory:
    coordinates: tuple[float, float, float, float, float]  # depth, sibling_order, homogeneity, temporal, complexity
    phase_id: int
    homogeneity: float
    turn_index: int

    def to_dict(self) -> dict:
        """The seed's `trajectory` object."""
        return {
            "coordinates": list(self.coordinates),
            "phase_id": self.phase_id,
            "homogeneity": self.homogeneity,
            "turn_index": self.turn_index,
        }


def phase_for_depth(depth: float) -> int:
    """Phase id 0..5 from depth, with right-inclusive bounds (0.10 -> 0, 0.5 -> 2, 1.0 -> 5)."""
    for phase_id, upper in enumerate(PHASE_UPPER_BOUNDS):
        if depth <= upper + 1e-12:
            return phase_id
    return len(PHASE_UPPER_BOUNDS)


def word_set(text: str) -> frozenset[str]:
    return text_features(text).words


def lexical_cosine(words_a: frozenset[str], words_b: frozenset[str]) -> float:
    """Cosine of binary bag-of-words vectors: |A∩B| / sqrt(|A||B|); two empty texts are identical."""
    if not words_a or not words_b:
        return 1.0 if words_a == words_b else 0.0
    shared = len(words_a & words_b)
    return min(1.0, shared / math.sqrt(len(words_a) * len(words_b)))


def complexity(text: str) -> float:
    """Deterministic score in [0,1]; 0 for empty text. Each ingredient saturates smoothly,
    so more length, richer vocabulary, longer sentences or more code all give more."""
    # isspace() is `not text.strip()` without copying the text.
    if not text or text.isspace():
        return 0.0
    return complexity_from_features(text, text_features(text))


def complexity_from_features(text: str, features: TextFeatures) -> float:
    """`complexity(text)` for a non-blank text whose features are already computed."""
    # Length uses the whole text (cheap: characters, not words); the rest the window.
    length_score = 1.0 - math.exp(-len(text) / 1500.0)
    # Richness counts distinct words (saturating), so a richer vocabulary always scores more.
    richness = 1.0 - math.exp(-len(features.words) / 60.0)
    prose = features.prose
    sentences = 1 + prose.count(". ") + prose.count("\n")
    # A one-character `in` stops at the first hit; counting a pair scans the whole window.
    if "?" in prose:
        sentences += prose.count("? ")
    if "!" in prose:
        sentences += prose.count("! ")
    words_per_sentence = features.word_count * (len(prose) / max(1, len(features.window))) / sentences
    sentence_score = 1.0 - math.exp(-words_per_sentence / 20.0)
    code_score = min(1.0, features.code_characters / len(features.window))
    score = 0.35 * length_score + 0.2 * richness + 0.25 * sentence_score + 0.2 * code_score
    return min(1.0, max(0.0, score))


def _timestamp(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _temporal(messages: list[Message], depths: list[float]) -> list[float]:
    stamps = [_timestamp(message.created_at) for message in messages]
    if any(stamp is None for stamp in stamps):
        return depths
    first, last = stamps[0], stamps[-1]
    if last == first:
        return depths
    return [min(1.0, max(0.0, (stamp - first) / (last - first))) for stamp in stamps]


def _given(message: Message, turn_index: int) -> TurnTrajectory | None:
    """The trajectory an imported file gave for this message, if complete and sane."""
    given = message.trajectory
    if not isinstance(given, dict):
        return None
    try:
        coordinates = tuple(float(value) for value in given["coordinates"])
        if len(coordinates) != 5:
            return None
        phase_id = int(given["phase_id"])
        homogeneity = float(given.get("homogeneity", coordinates[2]))
        index = int(given.get("turn_index", turn_index))
    except (KeyError, TypeError, ValueError):
        return None
    return TurnTrajectory(coordinates, phase_id, homogeneity, index)  # type: ignore[arg-type]


def annotate(
    conversation: Conversation, *, recompute: bool = False, features: Sequence[TextFeatures] | None = None
) -> list[TurnTrajectory]:
    """One TurnTrajectory per message. Values given by an imported file are kept unless
    `recompute`. Same input, same output. `features` (one per message, from
    `compute_text_features`) saves recomputing them when the caller already has them."""
    messages = conversation.messages
    count = len(messages)
    if count == 0:
        return []
    if features is None:
        features = _LazyFeatures(messages)
    depths = [index / (count - 1) if count > 1 else 0.0 for index in range(count)]
    temporal = _temporal(messages, depths)
    result: list[TurnTrajectory] = []
    append = result.append
    role_codes = ROLE_CODES
    previous_words: frozenset[str] | None = None
    for index, message in enumerate(messages):
        kept = None if recompute or message.trajectory is None else _given(message, index)
        if kept is not None:
            append(kept)
            previous_words = None
            continue
        text = message.content
        current = features[index]
        words = current.words
        if index == 0:
            homogeneity = 1.0
        else:
            if previous_words is None:
                previous_words = features[index - 1].words
            homogeneity = lexical_cosine(previous_words, words)
        previous_words = words
        depth = depths[index]
        coordinates = (
            depth,
            role_codes.get(message.role, 0.33),
            homogeneity,
            temporal[index],
            0.0 if not text or text.isspace() else complexity_from_features(text, current),
        )
        append(TurnTrajectory(coordinates, phase_for_depth(depth), homogeneity, index))
    return result


class _LazyFeatures:
    """Features of a conversation's messages, computed (through the cache) when first asked."""

    __slots__ = ("_messages",)

    def __init__(self, messages: list[Message]):
        self._messages = messages

    def __getitem__(self, index: int) -> TextFeatures:
        return text_features(self._messages[index].content)
