"""Signal Desktop through sigtop's JSON export: one file per conversation, named as sigtop
names them, holding Signal Desktop's own message objects (tests/fixtures/signal/sigtop)."""

import zipfile
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.data.importers import detect_importer, read_conversations
from cognitivetwin_core.data.importers.signal import conversation_name

SIGTOP = Path(__file__).parent / "fixtures" / "signal" / "sigtop"


def test_sigtop_folder():
    assert detect_importer(SIGTOP).name == "signal"
    conversations, report = read_conversations(SIGTOP)
    assert report.ok, report.rejected
    # Outgoing messages are the owner's; incoming ones the contact's (the file's name) or, in a
    # group, the sender's number.
    assert report.participants == {"Lucas Almeida": 2, "Me": 2, "+351933333333": 1}
    assert report.owner == "Me"
    assert report.skipped_messages == {"media omitted": 1, "system": 2}
    by_title = {c.title: c for c in conversations}
    lucas = by_title["Lucas Almeida"].messages
    # The edit counts once, with its final text; sent_at is the time (received_at is a counter).
    assert [m.content for m in lucas] == ["Did you finish the book?", "Almost, two chapters left", "Nice 👍"]
    assert lucas[0].created_at == datetime(2024, 3, 7, 10, 0, tzinfo=UTC)
    assert lucas[-1].created_at == datetime(2024, 3, 7, 10, 5, tzinfo=UTC)
    assert [m.speaker for m in by_title["Book club"].messages] == ["+351933333333", "Me"]


def test_one_file_and_a_zip(tmp_path):
    _conversations, report = read_conversations(SIGTOP / "Lucas Almeida (+351912345678).json")
    assert report.importer == "signal" and report.participants == {"Lucas Almeida": 2, "Me": 1}
    archive = tmp_path / "signal.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in SIGTOP.iterdir():
            out.write(path, f"sigtop/{path.name}")
    _conversations, report = read_conversations(archive)
    assert report.importer == "signal" and report.messages_accepted == 5


def test_conversation_names():
    assert conversation_name("Lucas Almeida (+351912345678).json") == ("Lucas Almeida", False)
    assert conversation_name("Book club (group).json") == ("Book club", True)
    assert conversation_name("+351912345678.json") == ("+351912345678", False)


def test_a_mention_placeholder_is_left_out():
    from cognitivetwin_core.data.importers.report import ImportReport
    from cognitivetwin_core.data.importers.signal import message_from_record

    record = {
        "type": "incoming",
        "sent_at": 1709805600000,
        "body": "\ufffc can you check the list?",
        "bodyRanges": [{"start": 0, "length": 1, "mentionAci": "6e2a8b63-6a9f-4a57-9d0c-2f5c1c7b2d10"}],
    }
    message = message_from_record(record, ImportReport("x", "signal"), "Lucas Almeida")
    assert message.content == "can you check the list?" and message.speaker == "Lucas Almeida"
