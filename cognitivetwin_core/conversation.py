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

    def content_hash(self) -> str:
        """Identity of the conversation's content (roles, texts and speaker names where there are
        any: the same words said by someone else are another conversation), for de-duplication and caches."""
        digest = hashlib.sha256()
        for message in self.messages:
            item = [message.role, message.content]
            if message.speaker is not None:
                item.append(message.speaker)
            digest.update(json.dumps(item, ensure_ascii=False).encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()
