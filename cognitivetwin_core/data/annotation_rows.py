"""What the workspace stores per message besides its text: the trajectory and pattern labels
of `annotation/`, as table rows, with the version of the annotators that computed them
(`ANNOTATION_VERSION`: stored rows of another version are computed again)."""

from __future__ import annotations

from dataclasses import dataclass

from cognitivetwin_core.annotation.patterns import LABELER_VERSION, pattern_mask_for
from cognitivetwin_core.annotation.text_features import compute_text_features
from cognitivetwin_core.annotation.trajectory import ALGORITHM_VERSION, TurnTrajectory, annotate
from cognitivetwin_core.conversation import Conversation

ANNOTATION_VERSION = f"{ALGORITHM_VERSION}.{LABELER_VERSION}"


@dataclass(frozen=True)
class MessageAnnotation:
    turn_index: int
    role: str
    coordinates: tuple[float, float, float, float, float]
    phase_id: int
    homogeneity: float
    patterns: tuple[str, ...]

    @property
    def trajectory(self) -> TurnTrajectory:
        return TurnTrajectory(self.coordinates, self.phase_id, self.homogeneity, self.turn_index)


def annotation_rows(conversation: Conversation) -> tuple[list[tuple], int, int]:
    """Per message (depth, sibling_order, homogeneity, temporal, complexity, phase_id,
    pattern_mask), plus the conversation's phase and pattern masks."""
    messages = conversation.messages
    # Each message's words are read once, for both the annotator and the labeler.
    features = [compute_text_features(message.content) for message in messages]
    rows = []
    phase_bits = 0
    pattern_bits = 0
    for message, turn, message_features in zip(messages, annotate(conversation, features=features), features):
        mask = pattern_mask_for(message, message_features)
        phase_bits |= 1 << turn.phase_id if 0 <= turn.phase_id < 6 else 0
        pattern_bits |= mask
        rows.append((*turn.coordinates, turn.phase_id, mask))
    return rows, phase_bits, pattern_bits


def annotate_conversations(conversations: list[Conversation]) -> list[tuple[list[tuple], int, int]]:
    """`annotation_rows` of each conversation (a batch, as the annotation workers get it)."""
    return [annotation_rows(conversation) for conversation in conversations]
