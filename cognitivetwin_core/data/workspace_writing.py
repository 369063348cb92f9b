"""Writing conversations: an import streamed in batches, annotated (on worker processes for
big imports) and stored in one transaction, all of it or none; conversations already stored
(the same identity, docs/data-and-model.md) are counted as duplicates, not stored again."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cognitivetwin_core.annotation.pool import AnnotationPipeline
from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.data.annotation_rows import ANNOTATION_VERSION, annotate_conversations
from cognitivetwin_core.data.conversation_identity import content_hash
from cognitivetwin_core.data.workspace_connection import BATCH, WorkspaceConnection, now_text

_PREVIEW_CHARS = 160


@dataclass
class AddResult:
    """What one `add_conversations` call stored."""

    import_id: int
    conversations_added: int = 0
    messages_added: int = 0
    duplicates: int = 0
    ids: list[str] = field(default_factory=list)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _preview(conversation: Conversation) -> str:
    for message in conversation.messages:
        if message.role == "user" and message.content.strip():
            text = message.content
            break
    else:
        text = conversation.messages[0].content if conversation.messages else ""
    return " ".join(text[: _PREVIEW_CHARS * 2].split())[:_PREVIEW_CHARS]


def _stored_values(db: sqlite3.Connection, column: str, values: list[str]) -> set[str]:
    """Which of `values` a conversation already has in `column` (an indexed, unique one)."""
    if not values:
        return set()
    query = f"SELECT {column} FROM conversations WHERE {column} IN ({','.join('?' * len(values))})"
    return {row[0] for row in db.execute(query, values)}


class ConversationWriter(WorkspaceConnection):
    """Adding and deleting conversations."""

    def add_conversations(
        self,
        conversations: Iterable[Conversation],
        *,
        source_label: str = "api",
        importer: str | None = None,
        location: str | None = None,
        report: dict | Callable[[], dict] | None = None,
        progress: Callable[[int, int], None] | None = None,
        before_commit: Callable[[sqlite3.Connection], None] | None = None,
    ) -> AddResult:
        """Store conversations (annotated) in one transaction: all of them or, if the iterable
        raises (a strict import aborting, a cancel), none. Conversations already stored (the
        same identity: `content_hash`) are skipped as duplicates. `report` (or a callable
        returning it once the iterable is exhausted) is saved with the import record.
        `progress(conversations, messages)` is called after each batch. `before_commit(db)`
        runs last inside the transaction (what it raises keeps nothing of the import)."""
        with self._writer_note(f"an import of {location or source_label}"), self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO imports(source_label, importer, location, started_at) VALUES(?,?,?,?)",
                (source_label, importer, location, now_text()),
            )
            result = AddResult(import_id=cursor.lastrowid)
            next_pk = db.execute("SELECT COALESCE(MAX(pk), 0) + 1 FROM conversations").fetchone()[0]
            seen_hashes: set[str] = set()
            pending_ids: set[str] = set()  # ids given to batches not yet written
            batch: list[Conversation] = []

            def write(done) -> None:
                prepared, annotations = done
                self._write_batch(db, prepared, annotations, result)
                pending_ids.difference_update(row[1] for row in prepared)
                if progress is not None:
                    progress(result.conversations_added + result.duplicates, result.messages_added)

            def submit() -> None:
                nonlocal next_pk
                prepared, next_pk = self._prepare_batch(db, batch, next_pk, result, seen_hashes, pending_ids)
                batch.clear()
                for done in pipeline.submit(prepared, [row[3] for row in prepared]):
                    write(done)

            with AnnotationPipeline(annotate_conversations) as pipeline:
                for conversation in conversations:
                    batch.append(conversation)
                    if len(batch) >= BATCH:
                        submit()
                if batch:
                    submit()
                for done in pipeline.drain():
                    write(done)
            details = report() if callable(report) else (report or {})
            db.execute(
                "UPDATE imports SET finished_at=?, conversations=?, messages=?, duplicates=?, "
                "rejected=?, report=? WHERE id=?",
                (
                    now_text(),
                    result.conversations_added,
                    result.messages_added,
                    result.duplicates,
                    int(details.get("rejected_count", len(details.get("rejected", [])))),
                    json.dumps(details, ensure_ascii=False, default=str),
                    result.import_id,
                ),
            )
            if location is not None:  # the file is imported again with today's identity
                db.execute(
                    "UPDATE imports SET duplicates_by_text=0 WHERE location=? AND id<?", (location, result.import_id)
                )
            if before_commit is not None:
                before_commit(db)
        return result

    def _prepare_batch(
        self,
        db,
        batch: list[Conversation],
        next_pk: int,
        result: AddResult,
        seen_hashes: set[str],
        pending_ids: set[str],
    ) -> tuple[list[tuple[int, str, str, Conversation]], int]:
        """(pk, id, content hash, conversation) for each conversation of the batch to store,
        in order, and the next free pk; duplicates are counted and left out."""
        hashed = [(content_hash(conversation), conversation) for conversation in batch if conversation.messages]
        stored = _stored_values(db, "content_hash", [digest for digest, _ in hashed])
        taken_ids = _stored_values(db, "id", [conversation.id for _, conversation in hashed])
        taken_ids |= pending_ids
        prepared = []
        for digest, conversation in hashed:
            if digest in stored or digest in seen_hashes:
                result.duplicates += 1
                continue
            seen_hashes.add(digest)
            conversation_id = self._free_id(db, conversation.id, taken_ids)
            taken_ids.add(conversation_id)
            pending_ids.add(conversation_id)
            prepared.append((next_pk, conversation_id, digest, conversation))
            next_pk += 1
        return prepared, next_pk

    def _write_batch(
        self, db, prepared: list[tuple[int, str, str, Conversation]], annotations: list, result: AddResult
    ) -> None:
        conversation_rows = []
        message_rows = []
        append_message = message_rows.append
        import_id = result.import_id
        for (pk, conversation_id, digest, conversation), (rows, phase_bits, pattern_bits) in zip(prepared, annotations):
            messages = conversation.messages
            conversation_rows.append(
                (
                    pk,
                    conversation_id,
                    conversation.source,
                    conversation.title,
                    digest,
                    len(messages),
                    _iso(messages[0].created_at),
                    _preview(conversation),
                    import_id,
                    phase_bits,
                    pattern_bits,
                    ANNOTATION_VERSION,
                    conversation.source_id,
                )
            )
            for turn_index, (message, annotation) in enumerate(zip(messages, rows)):
                created_at = message.created_at
                append_message(
                    (
                        pk,
                        turn_index,
                        message.role,
                        message.content,
                        created_at.isoformat() if created_at is not None else None,
                        json.dumps(message.patterns) if message.patterns is not None else None,
                        json.dumps(message.trajectory) if message.trajectory is not None else None,
                        *annotation,
                        message.speaker,
                    )
                )
            result.conversations_added += 1
            result.messages_added += len(messages)
            result.ids.append(conversation_id)
        db.executemany(
            "INSERT INTO conversations(pk, id, source, title, content_hash, message_count, first_at, "
            "preview, import_id, phase_mask, pattern_mask, annotation_version, source_id) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            conversation_rows,
        )
        db.executemany(
            "INSERT INTO messages(conversation_pk, turn_index, role, content, created_at, explicit_patterns, "
            "given_trajectory, depth, sibling_order, homogeneity, temporal, complexity, phase_id, pattern_mask, "
            "speaker) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            message_rows,
        )

    @staticmethod
    def _free_id(db, wanted: str, taken: set[str]) -> str:
        """The conversation's own id, or `id~2`, `id~3`... when different content already uses it."""
        if wanted not in taken:
            return wanted
        suffix = 2
        while True:
            candidate = f"{wanted}~{suffix}"
            if (
                candidate not in taken
                and not db.execute("SELECT 1 FROM conversations WHERE id=?", (candidate,)).fetchone()
            ):
                return candidate
            suffix += 1

    def delete_conversations(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        with self._transaction() as db:
            deleted = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                deleted += db.execute(
                    f"DELETE FROM conversations WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ).rowcount
        return deleted
