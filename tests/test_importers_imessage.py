"""iMessage's chat.db: the fixture tests/fixtures/imessage/chat.db.sql creates the tables and
columns of macOS Messages with rows as Messages writes them (nanosecond dates since 2001, NULL
text with an attributedBody typedstream, tapbacks, attachment placeholders)."""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cognitivetwin_core.data.importers import detect_importer, import_into, read_conversations
from cognitivetwin_core.data.importers.imessage import apple_time, typedstream_text
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import InputError

SQL = Path(__file__).parent / "fixtures" / "imessage" / "chat.db.sql"
LONG = (
    "Sorry, I only saw this now — the meeting ran long and my phone was in my bag. "
    "Tonight still works for me, and I can pick up the cake on the way over. 🎂"
)


@pytest.fixture()
def chat_db(tmp_path) -> Path:
    path = tmp_path / "Library" / "Messages" / "chat.db"
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.executescript(SQL.read_text(encoding="utf-8"))
    db.commit()
    db.close()
    return path


def test_chat_db(chat_db):
    assert detect_importer(chat_db).name == "imessage"
    conversations, report = read_conversations(chat_db)
    assert report.ok, report.rejected
    assert report.participants == {"zoe@icloud.com": 3, "+15551234567": 2, "joao@example.com": 1}
    assert report.skipped_messages == {"media omitted": 1, "reactions": 1, "system": 1}
    assert report.owner == "zoe@icloud.com"  # is_from_me, named by the account it went out from
    first, family = conversations
    assert [(m.speaker, m.content) for m in first.messages] == [
        ("+15551234567", "Are you coming tonight?"),
        ("zoe@icloud.com", "Yes! Leaving at 7 🚗"),  # NULL text: decoded from attributedBody
        ("zoe@icloud.com", "Look at this view"),  # the photo's caption without U+FFFC
        ("+15551234567", LONG),  # attributedBody with a two-byte length
    ]
    assert first.messages[0].created_at == datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
    assert family.title == "Família"
    assert family.messages[-1].created_at == datetime(2024, 3, 3, 8, 2, tzinfo=UTC)


def test_dates_and_typedstream():
    assert apple_time(0) is None
    # Seconds in databases before macOS 10.13, nanoseconds after.
    assert apple_time(731066400) == apple_time(731066400 * 10**9) == datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
    assert typedstream_text(None) is None and typedstream_text(b"no string here") is None


def test_locked_database_is_read_from_a_copy(chat_db):
    holder = sqlite3.connect(chat_db)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        _conversations, report = read_conversations(chat_db)
    finally:
        holder.rollback()
        holder.close()
    assert report.participants["zoe@icloud.com"] == 3


def test_unreadable_database_says_how_to_allow_full_disk_access(chat_db, monkeypatch):
    import builtins

    real_open = builtins.open

    def macos_privacy(path, *args, **kwargs):  # what macOS does without Full Disk Access
        if str(path) == str(chat_db):
            raise PermissionError(1, "Operation not permitted", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", macos_privacy)
    with pytest.raises(InputError, match="Privacy & Security > Full Disk Access"):
        read_conversations(chat_db)


def test_owner_becomes_the_twin_speaker(chat_db, tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, chat_db)
        assert workspace.twin_speaker() == "zoe@icloud.com"
