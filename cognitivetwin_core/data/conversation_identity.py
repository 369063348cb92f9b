"""Which stored conversations are the same (docs/data-and-model.md, "Which conversations are the
same"): the fast form of `Conversation.content_hash()` an import uses, and the migration that
gives conversations stored under the older identity (roles and texts alone) the current one.

A conversation is the same as a stored one when the source's own id (if any), and every
message's role, text, speaker and time are equal. Until this identity, conversations with equal
texts at other times or from other people were counted as duplicates and not stored; the
imports that counted duplicates that way are marked (`imports.duplicates_by_text`) so the
workspace can say which files to import again.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from datetime import datetime
from json.encoder import encode_basestring as _encode_string

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.records import stable_id

# Messenger importers: a conversation's source id is its chat's name (its title).
_CHATS = ("whatsapp", "telegram")
_SUFFIX = re.compile(r"~\d+$")  # `id~2`: the workspace's id for a second conversation with one id
_REHASH_BATCH = 500


def content_hash(conversation: Conversation) -> str:
    """Exactly `Conversation.content_hash()` (sha256 over `json.dumps([role, content, speaker,
    time])` per message, after the source's own id) without `json.dumps`: the role's part is
    cached and the content is escaped as UTF-8 bytes (`_json_string_bytes`); hashing was a
    tenth of an import's time."""
    digest = hashlib.sha256()
    update = digest.update
    if conversation.source_id is not None:
        update(b"\x01" + _encode_string(conversation.source_id).encode("utf-8") + b"\x00")
    for message in conversation.messages:
        role = message.role
        opening = _ROLE_OPENINGS.get(role)
        if opening is None:
            opening = _ROLE_OPENINGS[role] = f'[{_encode_string(role)}, "'.encode()
        update(opening)
        update(_json_string_bytes(message.content))
        speaker = message.speaker
        update(b'", null, ' if speaker is None else b'", "' + _json_string_bytes(speaker) + b'", ')
        created_at = message.created_at
        update(b"null]\x00" if created_at is None else b'"' + created_at.isoformat().encode("ascii") + b'"]\x00')
    return digest.hexdigest()


_ROLE_OPENINGS: dict[str, bytes] = {}
# Control characters JSON escapes other than tab and newline (rare in chat text). UTF-8
# bytes below 0x20 are exactly these characters: multi-byte sequences are all >= 0x80.
_RARE_CONTROLS = bytes(code for code in range(0x20) if code not in (0x09, 0x0A))


def _json_string_bytes(text: str) -> bytes:
    """`json.dumps(text, ensure_ascii=False)` without its quotes, as UTF-8; byte replaces
    are several times faster than the encoder's character loop."""
    data = text.encode("utf-8")
    if len(data.translate(None, _RARE_CONTROLS)) != len(data):
        return _encode_string(text)[1:-1].encode("utf-8")
    return data.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n").replace(b"\t", b"\\t")


def stored_source_id(
    conversation_id: str, title: str | None, importer: str | None, messages: list[Message]
) -> str | None:
    """The source's own id of a conversation stored before it was kept, as its importer gives it
    today: a messenger chat's name; else the stored id without the workspace's `~N`, unless the
    id was made here (conversations added without an import, ids made from a record's texts)."""
    if importer in _CHATS:
        return title
    if importer is None:
        return None
    base = _SUFFIX.sub("", conversation_id)
    made_from_texts = "-" + stable_id("", messages).rsplit("-", 1)[-1]
    return None if base.endswith(made_from_texts) else base


def rehash_stored_conversations(db: sqlite3.Connection) -> None:
    """Migration: the source's own id and the current identity hash of every stored conversation
    (the hashes are first made unique placeholders, so no new hash meets an old one)."""
    db.execute("UPDATE conversations SET content_hash = 'migrating:' || pk")
    last_pk = 0
    while True:
        rows = db.execute(
            "SELECT c.pk, c.id, c.title, i.importer FROM conversations c LEFT JOIN imports i ON i.id = c.import_id "
            "WHERE c.pk > ? ORDER BY c.pk LIMIT ?",
            (last_pk, _REHASH_BATCH),
        ).fetchall()
        if not rows:
            return
        pks = [row[0] for row in rows]
        messages: dict[int, list[Message]] = {pk: [] for pk in pks}
        for pk, role, content, created_at, speaker in db.execute(
            "SELECT conversation_pk, role, content, created_at, speaker FROM messages "
            f"WHERE conversation_pk IN ({','.join('?' * len(pks))}) ORDER BY conversation_pk, turn_index",
            pks,
        ):
            when = datetime.fromisoformat(created_at) if created_at else None
            messages[pk].append(Message(role=role, content=content, created_at=when, speaker=speaker))
        updates = []
        for pk, conversation_id, title, importer in rows:
            source_id = stored_source_id(conversation_id, title, importer, messages[pk])
            conversation = Conversation(conversation_id, "", messages[pk], source_id=source_id)
            updates.append((source_id, content_hash(conversation), pk))
        db.executemany("UPDATE conversations SET source_id=?, content_hash=? WHERE pk=?", updates)
        last_pk = pks[-1]
