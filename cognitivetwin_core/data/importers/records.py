"""Turning parsed JSON records into Messages and Conversations, with exact rejection reasons.

Shared by the file importers: one rule set for roles, content, timestamps and labels, so
every format rejects the same problems with the same words.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
from cognitivetwin_core.conversation import ROLES, Conversation, Message

# Speaker names seen in real dumps (ShareGPT, Supabase tables, exports) and their roles.
ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "person": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "ai": "assistant",
    "bot": "assistant",
    "claude": "assistant",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
    "ipython": "tool",
}
_PATTERN_SET = frozenset(PATTERN_NAMES)


class RecordError(Exception):
    """A record cannot be imported: `field` (a JSON path like messages[2].content) and why."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def map_role(value, field: str, *, aliases: bool) -> str:
    if not isinstance(value, str):
        raise RecordError(field, f"role must be a string, got {type(value).__name__}")
    key = value.strip().lower()
    role = ROLE_ALIASES.get(key) if aliases else (key if key in ROLES else None)
    if role is None:
        known = ", ".join(sorted(ROLE_ALIASES) if aliases else ROLES)
        raise RecordError(field, f"unknown role {value!r} (expected one of: {known})")
    return role


def check_text(value, field: str, *, allow_empty: bool = False) -> str:
    if value is None:
        raise RecordError(field, "missing content")
    if not isinstance(value, str):
        raise RecordError(field, f"content must be a string, got {type(value).__name__}")
    # isspace() and isascii() answer without copying the text (strip() and encode() would).
    if not allow_empty and (not value or value.isspace()):
        raise RecordError(field, "empty content")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RecordError(field, f"not UTF-8 text (invalid bytes at character {exc.start})") from None
    return value


def parse_time(value, field: str) -> datetime | None:
    """ISO 8601 text or a Unix time in seconds (milliseconds when huge)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(field, "timestamp must be ISO 8601 text or a number of seconds")
    if isinstance(value, (int, float)):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise RecordError(field, f"timestamp {value!r} is out of range") from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise RecordError(field, f"timestamp {value!r} is not ISO 8601 (e.g. 2026-01-31T14:05:00Z)") from None
    raise RecordError(field, f"timestamp must be ISO 8601 text or a number, got {type(value).__name__}")


def parse_patterns(value, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise RecordError(field, "patterns must be a list of pattern names")
    unknown = [name for name in value if name not in _PATTERN_SET]
    if unknown:
        raise RecordError(field, f"unknown pattern {unknown[0]!r} (expected some of: {', '.join(PATTERN_NAMES)})")
    return list(value)


def parse_chat_message(item, field: str, *, aliases: bool = False) -> Message:
    """A `{"role", "content", "created_at"?, "patterns"?}` object (Together / OpenAI chat shape)."""
    if not isinstance(item, dict):
        raise RecordError(field, f"a message must be an object, got {type(item).__name__}")
    if "role" not in item:
        raise RecordError(f"{field}.role", "missing role")
    role = map_role(item["role"], f"{field}.role", aliases=aliases)
    content = check_text(item.get("content"), f"{field}.content")
    created_at = None
    for key in ("created_at", "timestamp", "create_time"):
        if key in item:
            created_at = parse_time(item[key], f"{field}.{key}")
            break
    patterns = parse_patterns(item.get("patterns"), f"{field}.patterns") if "patterns" in item else None
    # Our own exports carry a messenger participant's name as "speaker" (not OpenAI's "name",
    # which chat dumps use for bots and would change whose messages a role means).
    speaker = item.get("speaker")
    if speaker is not None and (not isinstance(speaker, str) or not speaker.strip()):
        raise RecordError(f"{field}.speaker", "speaker must be a participant's name (text)")
    return Message(role=role, content=content, created_at=created_at, patterns=patterns, speaker=speaker)


def parse_chat_messages(value, field: str = "messages", *, aliases: bool = False) -> list[Message]:
    if value is None:
        raise RecordError(field, "missing messages")
    if not isinstance(value, list):
        raise RecordError(field, f"messages must be a list, got {type(value).__name__}")
    if not value:
        raise RecordError(field, "empty conversation (no messages)")
    return [parse_chat_message(item, f"{field}[{index}]", aliases=aliases) for index, item in enumerate(value)]


def optional_text(record: dict, key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RecordError(key, f"{key} must be a string, got {type(value).__name__}")
    return value.strip() or None


def message_text(record: dict, key: str) -> str:
    """A message's text field, stripped: "" when absent or null (media, calls), else it must be text."""
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise RecordError(key, f"{key} must be text, got {type(value).__name__}")
    return (value or "").strip()


def stable_id(prefix: str, messages: list[Message]) -> str:
    """An id for a conversation that has none: the same content always gets the same id."""
    digest = hashlib.sha256()
    for message in messages:
        digest.update(message.role.encode())
        digest.update(b"\x00")
        digest.update(message.content.encode("utf-8"))
        digest.update(b"\x01")
    return f"{prefix}-{digest.hexdigest()[:16]}"


def make_conversation(
    record_id: str | None, source: str, messages: list[Message], *, title: str | None = None, id_prefix: str
) -> Conversation:
    """The record's conversation; its own id (when it has one) is kept as `source_id`, part of its identity."""
    return Conversation(
        id=record_id or stable_id(id_prefix, messages),
        source=source,
        messages=messages,
        title=title,
        source_id=record_id,
    )
