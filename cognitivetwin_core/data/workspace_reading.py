"""Reading conversations: filtered counts and pages of summaries over indexed columns,
conversations streamed in keyset-paged batches, the data's hash, statistics and the imports."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from cognitivetwin_core.annotation.patterns import PATTERN_INDEX, names_from_mask
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.annotation_rows import ANNOTATION_VERSION
from cognitivetwin_core.data.workspace_connection import BATCH, WorkspaceConnection
from cognitivetwin_core.errors import InputError


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    source: str
    title: str | None
    message_count: int
    first_at: str | None
    preview: str
    phases: tuple[int, ...]
    patterns: tuple[str, ...]


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ConversationReader(WorkspaceConnection):
    """Counting, listing, loading and summarising the stored conversations."""

    @staticmethod
    def _filters(
        source=None, search=None, min_messages=None, max_messages=None, phase=None, pattern=None, ids=None
    ) -> tuple[str, list]:
        clauses: list[str] = []
        params: list = []
        if source:
            clauses.append("c.source = ?")
            params.append(source)
        if min_messages is not None:
            clauses.append("c.message_count >= ?")
            params.append(int(min_messages))
        if max_messages is not None:
            clauses.append("c.message_count <= ?")
            params.append(int(max_messages))
        if phase is not None:
            clauses.append("(c.phase_mask & ?) != 0")
            params.append(1 << int(phase))
        if pattern:
            if pattern not in PATTERN_INDEX:
                raise InputError(f"Unknown pattern {pattern!r}: use one of {', '.join(PATTERN_INDEX)}.")
            clauses.append("(c.pattern_mask & ?) != 0")
            params.append(1 << PATTERN_INDEX[pattern])
        if search:
            like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append(
                "(c.id LIKE ? ESCAPE '\\' OR c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m "
                "WHERE m.conversation_pk = c.pk AND m.content LIKE ? ESCAPE '\\'))"
            )
            params += [like, like, like]
        if ids is not None:
            ids = list(ids)
            clauses.append(f"c.id IN ({','.join('?' * len(ids))})" if ids else "0")
            params += ids
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def count_conversations(self, **filters) -> int:
        where, params = self._filters(**filters)
        return self._query(f"SELECT COUNT(*) FROM conversations c{where}", params)[0][0]

    def count_messages(self) -> int:
        return self._query("SELECT COUNT(*) FROM messages")[0][0]

    def list_conversations(
        self,
        offset: int = 0,
        limit: int = 100,
        *,
        source: str | None = None,
        search: str | None = None,
        min_messages: int | None = None,
        max_messages: int | None = None,
        phase: int | None = None,
        pattern: str | None = None,
    ) -> list[ConversationSummary]:
        """One page of conversation summaries in import order."""
        where, params = self._filters(source, search, min_messages, max_messages, phase, pattern)
        rows = self._query(
            "SELECT c.id, c.source, c.title, c.message_count, c.first_at, c.preview, c.phase_mask, c.pattern_mask "
            f"FROM conversations c{where} ORDER BY c.pk LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
        return [
            ConversationSummary(
                id=row[0],
                source=row[1],
                title=row[2],
                message_count=row[3],
                first_at=row[4],
                preview=row[5] or "",
                phases=tuple(phase_id for phase_id in range(6) if row[6] >> phase_id & 1),
                patterns=tuple(names_from_mask(row[7])),
            )
            for row in rows
        ]

    def _require(self, conversation_id: str) -> int:
        row = self._query("SELECT pk FROM conversations WHERE id = ?", (conversation_id,))
        if not row:
            raise InputError(f"No conversation {conversation_id!r} in the workspace {self.path}.")
        return row[0][0]

    def get_conversation(self, conversation_id: str) -> Conversation:
        pk = self._require(conversation_id)
        with self._reading():
            return self._load(self._db, [pk])[0][1]

    @staticmethod
    def _load(db, pks: list[int]) -> list[tuple[int, Conversation]]:
        placeholders = ",".join("?" * len(pks))
        conversations: dict[int, Conversation] = {}
        for pk, conversation_id, source, title, source_id in db.execute(
            f"SELECT pk, id, source, title, source_id FROM conversations WHERE pk IN ({placeholders}) ORDER BY pk",
            pks,
        ):
            conversations[pk] = Conversation(id=conversation_id, source=source, title=title, source_id=source_id)
        for pk, role, content, created_at, explicit, given, speaker in db.execute(
            "SELECT conversation_pk, role, content, created_at, explicit_patterns, given_trajectory, speaker "
            "FROM messages "
            f"WHERE conversation_pk IN ({placeholders}) ORDER BY conversation_pk, turn_index",
            pks,
        ):
            conversations[pk].messages.append(
                Message(
                    role=role,
                    content=content,
                    created_at=_parse_time(created_at),
                    patterns=json.loads(explicit) if explicit is not None else None,
                    trajectory=json.loads(given) if given is not None else None,
                    speaker=speaker,
                )
            )
        return list(conversations.items())

    def iter_conversations(self, ids: Iterable[str] | None = None, **filters) -> Iterator[Conversation]:
        """Stream conversations in import order, a batch at a time (keyset paging on pk)."""
        where, params = self._filters(ids=ids, **filters)
        last_pk = 0
        joiner = " AND " if where else " WHERE "
        while True:
            with self._reading():
                pks = [
                    row[0]
                    for row in self._db.execute(
                        f"SELECT c.pk FROM conversations c{where}{joiner}c.pk > ? ORDER BY c.pk LIMIT ?",
                        [*params, last_pk, BATCH],
                    )
                ]
                if not pks:
                    return
                batch = self._load(self._db, pks)
            last_pk = pks[-1]
            for _, conversation in batch:
                yield conversation

    def data_hash(self, ids: Iterable[str] | None = None) -> str:
        """Content hash of the selected conversations (all by default), independent of order."""
        where, params = self._filters(ids=ids)
        digest = hashlib.sha256()
        with self._reading():
            for (stored_hash,) in self._db.execute(
                f"SELECT c.content_hash FROM conversations c{where} ORDER BY c.content_hash", params
            ):
                digest.update(stored_hash.encode("ascii"))
        return digest.hexdigest()

    def sources(self) -> list[str]:
        return [row[0] for row in self._query("SELECT DISTINCT source FROM conversations ORDER BY source")]

    def stats(self) -> dict:
        conversations, messages_in_conversations = self._query(
            "SELECT COUNT(*), COALESCE(SUM(message_count), 0) FROM conversations"
        )[0]
        by_source = dict(self._query("SELECT source, COUNT(*) FROM conversations GROUP BY source ORDER BY source"))
        by_role = dict(self._query("SELECT role, COUNT(*) FROM messages GROUP BY role ORDER BY role"))
        by_phase = dict(self._query("SELECT phase_id, COUNT(*) FROM messages GROUP BY phase_id ORDER BY phase_id"))
        bits = ", ".join(f"SUM((pattern_mask >> {index}) & 1)" for index in range(len(PATTERN_INDEX)))
        pattern_counts = self._query(f"SELECT {bits} FROM messages")[0]
        characters = self._query("SELECT COALESCE(SUM(LENGTH(content)), 0) FROM messages")[0][0]
        imports = self._query(
            "SELECT id, source_label, importer, location, finished_at, conversations, messages, duplicates, rejected "
            "FROM imports ORDER BY id"
        )
        return {
            "path": str(self.path),
            "conversations": conversations,
            "messages": messages_in_conversations,
            "characters": characters,
            "mean_messages_per_conversation": (messages_in_conversations / conversations) if conversations else 0.0,
            "by_source": by_source,
            "by_role": by_role,
            "by_phase": {int(key): value for key, value in by_phase.items() if key is not None},
            "by_pattern": {name: int(pattern_counts[index] or 0) for name, index in PATTERN_INDEX.items()},
            "imports": [
                dict(
                    zip(
                        (
                            "id",
                            "source_label",
                            "importer",
                            "location",
                            "finished_at",
                            "conversations",
                            "messages",
                            "duplicates",
                            "rejected",
                        ),
                        row,
                    )
                )
                for row in imports
            ],
            "annotation_version": ANNOTATION_VERSION,
            "imports_to_repeat": self.imports_to_repeat(),
        }

    def imports_to_repeat(self) -> list[dict]:
        """Imports that counted duplicates by their texts alone, before conversations were told
        apart by speaker and time: their files may hold conversations that were left out. Each
        with `advice`, the sentence to show (importing the file again adds only what is missing).
        One per file: its first such import (later ones of the same file mostly met their own
        conversations); conversations added by code, without a file, have nothing to repeat."""
        rows = self._query(
            # With one MIN(), SQLite takes the other columns from that row: the file's first import.
            "SELECT MIN(id), importer, location, finished_at, duplicates_by_text FROM imports "
            "WHERE duplicates_by_text > 0 AND location IS NOT NULL GROUP BY location ORDER BY 1"
        )
        return [
            {
                "id": import_id,
                "importer": importer,
                "location": location,
                "finished_at": finished_at,
                "duplicates": count,
                "advice": (
                    f"The import of {location} on {(finished_at or '?')[:10]} skipped {count} "
                    f"conversation{'s' if count != 1 else ''} whose texts were already stored, without "
                    "comparing who spoke and when; some may have been other conversations. Import "
                    f"{location} again to add them (nothing already stored is added twice)."
                ),
            }
            for import_id, importer, location, finished_at, count in rows
        ]

    def imports(self) -> list[dict]:
        """Every import with its stored report."""
        rows = self._query(
            "SELECT id, source_label, importer, location, started_at, finished_at, conversations, messages, "
            "duplicates, rejected, report FROM imports ORDER BY id"
        )
        keys = (
            "id",
            "source_label",
            "importer",
            "location",
            "started_at",
            "finished_at",
            "conversations",
            "messages",
            "duplicates",
            "rejected",
        )
        return [{**dict(zip(keys, row[:-1])), "report": json.loads(row[-1]) if row[-1] else {}} for row in rows]
