"""Conversations and messages: the one in-memory shape every part of the core shares."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Message:
    role: str
    content: str
    created_at: datetime | None = None
    # Explicit pattern labels from the data; they win over the rule-based labeler.
    patterns: list[str] | None = None
    # Trajectory values given by an imported file (kept unless the user asks to recompute):
    # {"coordinates": [5 floats], "phase_id": int, "homogeneity": float, "turn_index": int}
    trajectory: dict | None = None
    # The participant's name in chats with names (messenger exports). The role is then only
    # a placeholder ("user"): whose messages are the twin's is decided at export time by the
    # workspace's twin speaker (docs/twin-speaker.md).
    speaker: str | None = None


@dataclass
class Conversation:
    id: str
    source: str
    messages: list[Message] = field(default_factory=list)
    title: str | None = None
    # The conversation's own id in the file or table it came from (a record's "id", a
    # Supabase conversation_id), None when the source gives none: part of its identity.
    source_id: str | None = None

    def content_hash(self) -> str:
        """The conversation's identity (docs/data-and-model.md, "Which conversations are the
        same"): per message its role, text, speaker and time, plus the source's own id where
        there is one. "lol" on Monday and "lol" on Friday, or the same words said by someone
        else, are other conversations; the same file read twice gives the same hashes."""
        digest = hashlib.sha256()
        if self.source_id is not None:
            digest.update(b"\x01" + json.dumps(self.source_id, ensure_ascii=False).encode("utf-8") + b"\x00")
        for message in self.messages:
            created_at = message.created_at.isoformat() if message.created_at is not None else None
            item = [message.role, message.content, message.speaker, created_at]
            digest.update(json.dumps(item, ensure_ascii=False).encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()
