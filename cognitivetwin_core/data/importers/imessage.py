"""iMessage: the `chat.db` of macOS Messages (`~/Library/Messages/chat.db`).

Tables: `message` (ROWID, guid, text, attributedBody, handle_id, date, is_from_me,
associated_message_type, cache_has_attachments, account), `handle` (ROWID, id: a phone number
or e-mail), `chat` (ROWID, guid, chat_identifier, display_name) and the joins
`chat_message_join` and `chat_handle_join`. `is_from_me` decides the sender: the owner, named
by the account the message went out from (`message.account`, "E:me@icloud.com" → the address),
else "Me"; other messages are the handle's. Newer macOS leaves `text` NULL and keeps the words
in `attributedBody`, an NSAttributedString in Apple's typedstream format (`typedstream_text`).
Dates count from 2001-01-01 UTC, in nanoseconds (seconds in databases before macOS 10.13).
Tapbacks (`associated_message_type` 2000–2005 and their removals 3000–3005) and
attachment-only rows are skipped and counted; a photo's caption is kept without the U+FFFC
object placeholder.

The database is opened read-only (`mode=ro` URI); when Messages holds it locked it is copied
first (with its -wal file). A file macOS keeps from us says how to grant Full Disk Access.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.messenger import PLACEHOLDER_ROLE, chat_conversations, check_gap_hours
from cognitivetwin_core.data.importers.report import ImportProgress, ImportReport, ProgressCallback, Rejection
from cognitivetwin_core.errors import InputError

NAME = "imessage"
TITLE = "iMessage (macOS Messages chat.db)"
FILE_FILTER = "iMessage database (chat.db *.db)"

APPLE_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)
OBJECT_PLACEHOLDER = "\ufffc"
_TAPBACKS = range(2000, 3006)
FULL_DISK_ACCESS = (
    "macOS keeps Messages' files private: open System Settings > Privacy & Security > Full Disk "
    "Access, turn it on for this app (or for Terminal when you use the command line), restart it "
    "and import again"
)


def looks_like_chat_db(head: bytes) -> bool:
    return head.startswith(b"SQLite format 3\x00")


def apple_time(value) -> datetime | None:
    """A Messages date: nanoseconds since 2001-01-01 (seconds in older databases)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0:
        return None
    seconds = value / 1e9 if abs(value) > 1e11 else float(value)
    return APPLE_EPOCH + timedelta(seconds=seconds)


def typedstream_text(blob: bytes | None) -> str | None:
    """The string of an `attributedBody` typedstream: after the NSString class name comes
    `+` (0x2B, a C string follows) and its length: one byte, or 0x81 then 2 bytes little
    endian, or 0x82 then 4 bytes; then that many bytes of UTF-8."""
    if not blob:
        return None
    start = blob.find(b"NSString")
    if start < 0:
        return None
    plus = blob.find(b"+", start + len(b"NSString"))
    if plus < 0 or plus > start + 16:
        return None
    pos = plus + 1
    if pos >= len(blob):
        return None
    marker = blob[pos]
    if marker == 0x81:
        length = int.from_bytes(blob[pos + 1 : pos + 3], "little")
        pos += 3
    elif marker == 0x82:
        length = int.from_bytes(blob[pos + 1 : pos + 5], "little")
        pos += 5
    else:
        length = marker
        pos += 1
    raw = blob[pos : pos + length]
    if len(raw) < length:
        return None
    return raw.decode("utf-8", "replace")


def _open(path: Path) -> tuple[sqlite3.Connection, Path | None]:
    """A read-only connection, on a copy when the database is locked; (connection, copy folder)."""
    try:
        with open(path, "rb") as stream:
            if not looks_like_chat_db(stream.read(16)):
                raise InputError(f"{path} is not an SQLite database: choose Messages' chat.db.")
    except PermissionError:
        raise InputError(f"Cannot read {path}: {FULL_DISK_ACCESS}.") from None
    uri = f"file:{path}?mode=ro"
    try:
        # A short wait: a database Messages holds locked is read from a copy instead.
        db = sqlite3.connect(uri, uri=True, timeout=0.2)
        db.execute("SELECT COUNT(*) FROM message").fetchone()
        return db, None
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "no such table" in text:
            raise InputError(f"{path} has no 'message' table: it is not Messages' chat.db.") from None
        if "unable to open" in text or "authorization" in text:
            raise InputError(f"Cannot read {path}: {FULL_DISK_ACCESS}.") from None
        # Locked by Messages: read a copy taken with its write-ahead log.
        folder = Path(tempfile.mkdtemp(prefix="chatdb-"))
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{path}{suffix}")
            if source.exists():
                shutil.copy2(source, folder / f"chat.db{suffix}")
        db = sqlite3.connect(f"file:{folder / 'chat.db'}?mode=ro", uri=True)
        return db, folder


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def read(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, gap_hours: float | None = None
) -> Iterator[Conversation]:
    gap = check_gap_hours(gap_hours)
    path = Path(path)
    db, copy = _open(path)
    label = str(path)
    try:
        columns = _columns(db, "message")
        optional = {
            name: (f"m.{name}" if name in columns else "NULL")
            for name in ("attributedBody", "associated_message_type", "cache_has_attachments", "account", "item_type")
        }
        handles = dict(db.execute("SELECT ROWID, id FROM handle"))
        chats = db.execute("SELECT ROWID, guid, chat_identifier, display_name FROM chat ORDER BY ROWID").fetchall()
        total = db.execute("SELECT COUNT(*) FROM message").fetchone()[0]
        done = 0
        # One name for every message of the owner, whichever of their addresses sent it.
        owner = "Me"
        if "account" in columns:
            row = db.execute(
                "SELECT account FROM message WHERE is_from_me=1 AND account LIKE '%:_%' "
                "GROUP BY account ORDER BY COUNT(*) DESC LIMIT 1"
            ).fetchone()
            owner = (_account_handle(row[0]) if row else None) or owner
        for chat_rowid, guid, identifier, display_name in chats:
            members = [
                handles.get(row[0])
                for row in db.execute("SELECT handle_id FROM chat_handle_join WHERE chat_id=?", (chat_rowid,))
            ]
            title = display_name or ", ".join(name for name in members if name) or identifier

            def messages(chat_rowid=chat_rowid) -> Iterator[Message]:
                nonlocal done
                rows = db.execute(
                    "SELECT m.ROWID, m.text, m.handle_id, m.date, m.is_from_me, "
                    f"{optional['attributedBody']}, {optional['associated_message_type']}, "
                    f"{optional['cache_has_attachments']}, {optional['account']}, {optional['item_type']} "
                    "FROM message m JOIN chat_message_join j ON j.message_id = m.ROWID "
                    "WHERE j.chat_id=? ORDER BY m.date, m.ROWID",
                    (chat_rowid,),
                )
                for rowid, text, handle_id, date, from_me, body, associated, attachments, _account, item in rows:
                    done += 1
                    if progress is not None and done % 5000 == 0:
                        progress(
                            ImportProgress(done, total, "rows", report.conversations_accepted, report.messages_accepted)
                        )
                    if associated in _TAPBACKS:
                        report.skip("reactions")
                        continue
                    if item not in (None, 0):
                        report.skip("system")  # renames, joins, leaves
                        continue
                    if text is None:
                        text = typedstream_text(body)
                    text = (text or "").replace(OBJECT_PLACEHOLDER, "").strip()
                    if not text:
                        report.skip("media omitted" if attachments else "empty")
                        continue
                    if from_me:
                        speaker = owner
                    else:
                        speaker = handles.get(handle_id)
                        if not speaker:
                            report.reject(
                                Rejection(
                                    label, "the message names no sender (handle_id)", record=rowid, field="handle_id"
                                )
                            )
                            continue
                    yield Message(role=PLACEHOLDER_ROLE, content=text, created_at=apple_time(date), speaker=speaker)

            yield from chat_conversations(
                messages(),
                source=NAME,
                chat_key=guid or str(chat_rowid),
                source_id=guid or str(chat_rowid),
                title=title,
                gap_hours=gap,
                report=report,
            )
        report.owner = owner if owner in report.participants else None
        report.owner_marked = report.owner is not None
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path} cannot be read as Messages' chat.db ({exc}): copy it again.") from None
    finally:
        db.close()
        if copy is not None:
            shutil.rmtree(copy, ignore_errors=True)


def _account_handle(account) -> str | None:
    """`message.account` ("E:me@icloud.com", "p:+15551234567") as the bare address."""
    if not isinstance(account, str) or ":" not in account:
        return None
    handle = account.split(":", 1)[1].strip()
    return handle or None
