"""Stored annotations: each message's trajectory and pattern labels, computed on import and
recomputed when the annotators' version changes (`ANNOTATION_VERSION`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cognitivetwin_core.annotation.patterns import LABELER_VERSION, names_from_mask, pattern_mask_for
from cognitivetwin_core.annotation.text_features import compute_text_features
from cognitivetwin_core.annotation.trajectory import ALGORITHM_VERSION, TurnTrajectory, annotate
from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.data.workspace_connection import BATCH, WorkspaceConnection

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


class AnnotationStore(WorkspaceConnection):
    """Annotations of the stored messages. Reads conversations with `ConversationReader`'s
    `_load` and `_require`: `Workspace` is made of both."""

    def refresh_annotations(
        self, *, recompute_given: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Recompute stored annotations whose algorithm version differs from this code's
        (or all of them, ignoring trajectories given by imported files, with `recompute_given`).
        Returns how many conversations were annotated."""
        if recompute_given:
            with self._transaction() as db:
                db.execute("UPDATE messages SET given_trajectory=NULL WHERE given_trajectory IS NOT NULL")
                db.execute("UPDATE conversations SET annotation_version=NULL")
        stale = self._query(
            "SELECT COUNT(*) FROM conversations WHERE annotation_version IS NOT ?", (ANNOTATION_VERSION,)
        )[0][0]
        done = 0
        while done < stale:
            with self._transaction() as db:
                pks = [
                    row[0]
                    for row in db.execute(
                        "SELECT pk FROM conversations WHERE annotation_version IS NOT ? ORDER BY pk LIMIT ?",
                        (ANNOTATION_VERSION, BATCH),
                    )
                ]
                if not pks:
                    break
                for pk, conversation in self._load(db, pks):
                    rows, phase_bits, pattern_bits = annotation_rows(conversation)
                    db.executemany(
                        "UPDATE messages SET depth=?, sibling_order=?, homogeneity=?, temporal=?, complexity=?, "
                        "phase_id=?, pattern_mask=? WHERE conversation_pk=? AND turn_index=?",
                        [(*row, pk, index) for index, row in enumerate(rows)],
                    )
                    db.execute(
                        "UPDATE conversations SET phase_mask=?, pattern_mask=?, annotation_version=? WHERE pk=?",
                        (phase_bits, pattern_bits, ANNOTATION_VERSION, pk),
                    )
                done += len(pks)
            if progress is not None:
                progress(done, stale)
        return done

    def annotations(self, conversation_id: str) -> list[MessageAnnotation]:
        """Trajectory and patterns of every message of the conversation, in order."""
        rows = self._query(
            "SELECT m.turn_index, m.role, m.depth, m.sibling_order, m.homogeneity, m.temporal, m.complexity, "
            "m.phase_id, m.pattern_mask FROM messages m JOIN conversations c ON c.pk = m.conversation_pk "
            "WHERE c.id = ? ORDER BY m.turn_index",
            (conversation_id,),
        )
        if not rows:
            self._require(conversation_id)
        return [
            MessageAnnotation(
                turn_index=row[0],
                role=row[1],
                coordinates=(row[2], row[3], row[4], row[5], row[6]),
                phase_id=row[7],
                homogeneity=row[4],
                patterns=tuple(names_from_mask(row[8])),
            )
            for row in rows
        ]
