"""Messenger exports: WhatsApp (Android .txt, iPhone .zip) and Telegram Desktop (one chat, the
full export) import with their participants, counts, skipped lines and real timestamps,
cut into conversations at gaps in time. The fixtures in tests/fixtures/messenger are written
as the phones write them (narrow no-break spaces, left-to-right marks, system lines)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cognitivetwin_core.data.importers import detect_importer, import_into, read_conversations
from cognitivetwin_core.data.importers.whatsapp import NAME as WHATSAPP
from cognitivetwin_core.data.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "messenger"
ANDROID = FIXTURES / "WhatsApp Chat with Cabin trip.txt"
IOS_ZIP = FIXTURES / "WhatsApp Chat - Lea Vogel.zip"
TELEGRAM_CHAT = FIXTURES / "telegram_single_chat.json"
TELEGRAM_FULL = FIXTURES / "telegram_full_export.json"


def test_whatsapp_android_group_chat():
    conversations, report = read_conversations(ANDROID)
    assert report.importer == "whatsapp" and report.ok and not report.warnings
    assert report.participants == {"Maya Lindqvist": 6, "Jonas Berg": 3, "Priya Nair": 3}
    assert report.skipped_messages == {"system": 5, "media omitted": 1, "deleted": 1}
    assert "Maya Lindqvist (6 messages)" in report.summary()
    # Cut at the night's silence (> 6 h) into three conversations, titled after the chat.
    assert [len(c.messages) for c in conversations] == [6, 3, 3]
    assert {c.title for c in conversations} == {"Cabin trip"}
    first = conversations[0].messages
    # Month-first (12/31/23 decides it for the whole file), 12-hour clock after U+202F.
    assert first[0].created_at == datetime(2023, 12, 30, 20, 5)
    assert conversations[1].messages[0].created_at == datetime(2023, 12, 31, 9, 15)
    assert conversations[2].messages[-1].created_at == datetime(2024, 1, 2, 23, 45)
    # A multi-line message stays one message; the "edited" marker goes.
    priya = first[3]
    assert priya.speaker == "Priya Nair"
    assert priya.content.splitlines() == [
        "I'm in, but I can only leave after work",
        "so maybe 6ish?",
        "my number if the signal is bad up there: +1 415-555-0132",
    ]
    assert first[-1].content == "lol what did you delete 👀"
    assert all(m.role == "user" and m.speaker for c in conversations for m in c.messages)
    assert report.owner is None  # a group chat's title names no participant


def test_whatsapp_iphone_zip_day_first_with_marks():
    assert detect_importer(IOS_ZIP).name == WHATSAPP
    conversations, report = read_conversations(IOS_ZIP)
    assert report.ok and report.participants == {"Lea Vogel": 5, "Sam Okafor": 3}
    # The encryption notice is written as Sam's message behind a left-to-right mark.
    assert report.skipped_messages == {"system": 1, "media omitted": 1, "deleted": 1}
    assert [len(c.messages) for c in conversations] == [5, 3]
    # 03/01 alone is ambiguous; 13/01 further down makes the whole file day-first.
    assert conversations[0].messages[0].created_at == datetime(2024, 1, 3, 21, 15, 3)
    assert conversations[1].messages[0].created_at == datetime(2024, 1, 13, 8, 1, 15)
    assert conversations[1].messages[1].content == "no worries\ntake your time,\nI'll grab coffee"
    assert not any("\u200e" in m.content for c in conversations for m in c.messages)
    # "WhatsApp Chat - Lea Vogel": a two-person chat is named after the other person.
    assert report.owner == "Sam Okafor"


def test_whatsapp_date_order_is_decided_by_the_whole_file(tmp_path):
    # Every line would parse either way; the one day past the 12th (the last line) decides.
    lines = [f"0{day}/02/2024, 10:0{day} - Ana: message {day}" for day in range(1, 6)]
    lines.append("14/02/2024, 11:00 - Ben: the 14th")
    path = tmp_path / "chat.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    conversations, report = read_conversations(path, gap_hours=1000)
    stamps = [m.created_at for m in conversations[0].messages]
    assert stamps[0] == datetime(2024, 2, 1, 10, 1) and stamps[-1] == datetime(2024, 2, 14, 11, 0)
    # Ambiguous everywhere: a 24-hour clock reads day-first, and the report says so.
    path.write_text("\n".join(lines[:5]) + "\n", encoding="utf-8")
    conversations, report = read_conversations(path)
    assert conversations[0].messages[0].created_at == datetime(2024, 2, 1, 10, 1)
    assert any("day-first" in warning for warning in report.warnings)


def test_whatsapp_gap_is_configurable_and_a_non_chat_is_rejected(tmp_path):
    conversations, _ = read_conversations(ANDROID, gap_hours=48)
    assert [len(c.messages) for c in conversations] == [9, 3]
    other = tmp_path / "notes.txt"
    other.write_text("shopping list\nmilk\n", encoding="utf-8")
    conversations, report = read_conversations(other, importer=WHATSAPP)
    assert conversations == [] and report.rejected_total == 1
    assert "WhatsApp message" in report.rejected[0].reason


def test_telegram_single_chat():
    assert detect_importer(TELEGRAM_CHAT).name == "telegram"
    conversations, report = read_conversations(TELEGRAM_CHAT)
    assert report.ok and report.participants == {"Sam Okafor": 3, "Lea Vogel": 2}
    assert report.skipped_messages == {"system": 1, "media omitted": 1, "forwarded": 1}
    assert [len(c.messages) for c in conversations] == [3, 2]
    lea = conversations[0].messages[1]
    # Text as a list of parts and entities, joined in order.
    assert lea.content == "yes, the link https://example.com/deck works. mail me at lea.vogel@example.net"
    assert lea.created_at == datetime(2024, 2, 1, 10, 6, 10, tzinfo=UTC)
    assert conversations[0].messages[2].content == "great, I'll send the final version tonight"


def test_telegram_full_export_reads_every_chat(tmp_path):
    assert detect_importer(TELEGRAM_FULL).name == "telegram"
    conversations, report = read_conversations(TELEGRAM_FULL)
    assert report.ok
    assert report.participants == {"Sam Okafor": 4, "Lea Vogel": 3, "Tomás Ruiz": 1, "user5550009": 1}
    assert [c.title for c in conversations] == ["Lea Vogel", "Lea Vogel", "Climbing crew"]
    assert report.owner == "Sam Okafor"  # personal_information names who exported it
    # A truncated export keeps the messages before the break and says where it ends.
    text = TELEGRAM_FULL.read_text(encoding="utf-8")
    cut = tmp_path / "result.json"
    cut.write_text(text[: text.index("who is this group for")], encoding="utf-8")
    conversations, report = read_conversations(cut, importer="telegram")
    assert report.truncated_at is not None and not report.ok
    assert sum(len(c.messages) for c in conversations) == 8


def test_telegram_bad_message_is_rejected_with_its_line(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(
        '{"name": "x", "type": "personal_chat", "id": 1, "messages": [\n'
        ' {"id": 1, "type": "message", "date_unixtime": "1706781900", "from": "A", "text": "hi"},\n'
        ' {"id": 2, "type": "message", "date_unixtime": "1706781960", "from": "B", "text": 42},\n'
        ' {"id": 3, "type": "message", "date_unixtime": "1706782020", "from": "B", "text": "hello"}\n'
        "]}\n",
        encoding="utf-8",
    )
    conversations, report = read_conversations(path, importer="telegram")
    assert [m.content for m in conversations[0].messages] == ["hi", "hello"]
    rejection = report.rejected[0]
    assert (rejection.line, rejection.field) == (3, "text") and "string or a list" in rejection.reason


def test_messenger_import_into_a_workspace_keeps_names_and_lists_speakers(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        report = import_into(workspace, ANDROID)
        assert report.conversations_accepted == 3
        again = import_into(workspace, ANDROID)
        assert again.duplicates == 3  # the same chat twice is stored once
        stored = workspace.get_conversation(report.conversation_ids[0])
        assert [m.speaker for m in stored.messages][:2] == ["Maya Lindqvist", "Jonas Berg"]
        assert stored.messages[0].created_at == datetime(2023, 12, 30, 20, 5)
        speakers = {s.name: (s.named, s.messages) for s in workspace.speakers()}
        assert speakers == {"Maya Lindqvist": (True, 6), "Jonas Berg": (True, 3), "Priya Nair": (True, 3)}
        assert workspace.twin_speaker() == "assistant"
        assert workspace.set_twin_speaker("maya lindqvist") == "Maya Lindqvist"
        assert workspace.twin_speaker() == "Maya Lindqvist"
        with pytest.raises(Exception, match="not a speaker"):
            workspace.set_twin_speaker("Nobody")


def test_speaker_names_are_part_of_the_content_identity():
    from cognitivetwin_core.conversation import Conversation, Message
    from cognitivetwin_core.data.workspace import content_hash

    said_by_a = Conversation("a", "t", [Message("user", "ok", speaker="A"), Message("user", "ok", speaker="B")])
    said_by_b = Conversation("b", "t", [Message("user", "ok", speaker="B"), Message("user", "ok", speaker="A")])
    plain = Conversation("c", "t", [Message("user", 'say "hi"\n'), Message("assistant", "hi")])
    assert said_by_a.content_hash() != said_by_b.content_hash()
    for conversation in (said_by_a, said_by_b, plain):
        assert content_hash(conversation) == conversation.content_hash()


def test_a_schema_1_workspace_gains_speakers_and_settings(tmp_path):
    import sqlite3

    from cognitivetwin_core.data.workspace_schema import MIGRATIONS

    folder = tmp_path / "old"
    folder.mkdir()
    db = sqlite3.connect(folder / "workspace.sqlite3")
    db.executescript(MIGRATIONS[0])
    db.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES('schema_version', '1')")
    db.execute(
        "INSERT INTO conversations(pk, id, source, content_hash, message_count) VALUES(1, 'c', 'chat-jsonl', 'h', 2)"
    )
    db.executemany(
        "INSERT INTO messages(conversation_pk, turn_index, role, content) VALUES(1, ?, ?, ?)",
        [(0, "user", "hi"), (1, "assistant", "hello")],
    )
    db.commit()
    db.close()
    with Workspace.open(folder) as workspace:
        assert [(s.name, s.named, s.messages) for s in workspace.speakers()] == [
            ("assistant", False, 1),
            ("user", False, 1),
        ]
        assert workspace.get_conversation("c").messages[0].speaker is None
        assert workspace.twin_speaker() == "assistant"
        workspace.set_twin_speaker("user")
    with Workspace.open(folder) as workspace:
        assert workspace.twin_speaker() == "user"


def test_other_whatsapp_locales(tmp_path):
    german = tmp_path / "WhatsApp Chat mit Oma.txt"
    german.write_text(
        "31.12.23, 21:15 - Oma: Frohes neues Jahr!\n01.01.24, 09:02 - Ben: Danke, dir auch\n", encoding="utf-8"
    )
    spanish = tmp_path / "chat.txt"
    spanish.write_text(
        "[12/31/23, 9:15:00 p. m.] Ana: ¡feliz año!\n[1/1/24, 8:00:00 a. m.] Luis: igualmente\n", encoding="utf-8"
    )
    (oma,), _ = read_conversations(german, gap_hours=24)
    assert [m.created_at for m in oma.messages] == [datetime(2023, 12, 31, 21, 15), datetime(2024, 1, 1, 9, 2)]
    conversations, report = read_conversations(spanish, gap_hours=24)
    assert report.importer == "whatsapp"
    assert [m.created_at for m in conversations[0].messages] == [
        datetime(2023, 12, 31, 21, 15),
        datetime(2024, 1, 1, 8, 0),
    ]


def test_speaker_names_survive_the_trajectory_and_lossless_exports(tmp_path):
    from cognitivetwin_core.data.exports import export_trajectory, write_conversations_jsonl

    conversations, _ = read_conversations(ANDROID)
    write_conversations_jsonl(conversations, tmp_path / "copy.jsonl")
    again, report = read_conversations(tmp_path / "copy.jsonl")
    assert report.ok and [[m.speaker for m in c.messages] for c in again] == [
        [m.speaker for m in c.messages] for c in conversations
    ]
    export_trajectory(conversations, tmp_path / "phase2.jsonl")
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, tmp_path / "phase2.jsonl")
        assert {s.name: s.messages for s in workspace.speakers()} == {
            "Maya Lindqvist": 6,
            "Jonas Berg": 3,
            "Priya Nair": 3,
        }


def test_cli_import_suggests_the_exporter_as_me(tmp_path, capsys):
    from cognitivetwin_core.cli import main

    assert main(["data", "import", "--workspace", str(tmp_path / "ws"), str(IOS_ZIP), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Participants: Lea Vogel (5 messages), Sam Okafor (3 messages)" in out
    assert "This export looks like Sam Okafor's" in out
    assert 'cognitivetwin data speakers --me "Sam Okafor"' in out
