"""Stored annotations: each message's trajectory and pattern labels (`annotation_rows.py`),
read back, and recomputed when the annotators' version changes (`ANNOTATION_VERSION`)."""

from __future__ import annotations

from collections.abc import Callable

from cognitivetwin_core.annotation.patterns import names_from_mask
from cognitivetwin_core.data.annotation_rows import ANNOTATION_VERSION, MessageAnnotation, annotation_rows
from cognitivetwin_core.data.workspace_connection import BATCH
from cognitivetwin_core.data.workspace_reading import ConversationReader


class AnnotationStore(ConversationReader):
    """Annotations of the stored messages, read and (for another annotators' version) recomputed."""

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
