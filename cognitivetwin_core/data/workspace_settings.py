"""Workspace settings, and the twin's speaker among the people who speak in the
conversations (docs/twin-speaker.md)."""

from __future__ import annotations

import sqlite3

from cognitivetwin_core.data.twin_speaker import DEFAULT_TWIN_SPEAKER, ROLE_SPEAKERS, SpeakerCount
from cognitivetwin_core.data.twin_speaker import SETTING_KEY as TWIN_SPEAKER_KEY
from cognitivetwin_core.data.workspace_connection import WorkspaceConnection
from cognitivetwin_core.errors import InputError


class WorkspaceSettings(WorkspaceConnection):
    """Key-value settings and the speakers."""

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self._query("SELECT value FROM settings WHERE key=?", (key,))
        return row[0][0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self._transaction() as db:
            self.write_setting(db, key, value)

    @staticmethod
    def write_setting(db: sqlite3.Connection, key: str, value: str) -> None:
        """Set a setting inside a transaction already open (see `add_conversations`' `before_commit`)."""
        db.execute(
            "INSERT INTO settings(key, value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def speakers(self) -> list[SpeakerCount]:
        """Every participant (by name) and role (for messages without a name) that can be the
        person, with their message and conversation counts, most messages first."""
        rows = self._query(
            "SELECT COALESCE(speaker, role), speaker IS NOT NULL, COUNT(*), COUNT(DISTINCT conversation_pk) "
            "FROM messages WHERE speaker IS NOT NULL OR role IN ('user', 'assistant') "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1"
        )
        return [
            SpeakerCount(name, bool(named), messages, conversations) for name, named, messages, conversations in rows
        ]

    def twin_speaker(self) -> str:
        """Whose messages the twin learns: 'assistant' (default), 'user' or a participant's name."""
        return self.get_setting(TWIN_SPEAKER_KEY) or DEFAULT_TWIN_SPEAKER

    def resolve_speaker(self, speaker: str) -> str:
        """A role ('assistant', 'user') or a participant named in the workspace (case aside), as
        stored; an unknown one raises InputError naming the choices."""
        speaker = (speaker or "").strip()
        if speaker in ROLE_SPEAKERS:
            return speaker
        names = [item.name for item in self.speakers() if item.named]
        if speaker in names:
            return speaker
        folded = [name for name in names if name.casefold() == speaker.casefold()]
        if len(folded) != 1:
            choices = ", ".join([*ROLE_SPEAKERS, *names[:20]])
            raise InputError(
                f"{speaker!r} is not a speaker of the workspace {self.path}: choose one of {choices} "
                "(`cognitivetwin data speakers` lists them)."
            )
        return folded[0]

    def set_twin_speaker(self, speaker: str) -> str:
        """Set the person: a role ('assistant', 'user') or a participant named in the workspace."""
        speaker = self.resolve_speaker(speaker)
        self.set_setting(TWIN_SPEAKER_KEY, speaker)
        return speaker
