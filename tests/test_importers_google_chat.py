"""Google Chat from Google Takeout (tests/fixtures/google_chat/Takeout/Google Chat): DMs and
spaces with locale dates (U+202F before PM), group_info.json and the owner's user_info.json."""

import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cognitivetwin_core.data.importers import detect_importer, read_conversations
from cognitivetwin_core.data.importers.google_chat import parse_created_date
from cognitivetwin_core.data.importers.records import RecordError

TAKEOUT = Path(__file__).parent / "fixtures" / "google_chat" / "Takeout"


def test_takeout_folder_and_zip(tmp_path):
    assert detect_importer(TAKEOUT).name == "google-chat"
    conversations, report = read_conversations(TAKEOUT)
    assert report.ok, report.rejected
    assert report.participants == {"Zoë Martins": 2, "Lucas Almeida": 1, "Marta Costa": 1}
    assert report.owner == "Zoë Martins"  # Users/User …/user_info.json
    assert report.skipped_messages == {"deleted": 1, "media omitted": 1}
    dm, space = conversations
    assert [m.content for m in dm.messages] == ["Can you review my doc today?", "Sure, after lunch"]
    assert dm.messages[0].created_at == datetime(2024, 3, 6, 14, 15, 7, tzinfo=UTC)
    assert space.title == "Project X"
    assert space.messages[-1].created_at == datetime(2024, 3, 7, 9, 5, 30, tzinfo=UTC)
    archive = tmp_path / "takeout-20240310T120000Z-001.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(TAKEOUT.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(TAKEOUT.parent).as_posix())
    assert detect_importer(archive).name == "google-chat"
    _conversations, report = read_conversations(archive)
    assert report.messages_accepted == 4 and report.owner == "Zoë Martins"


def test_created_date_forms():
    assert parse_created_date("Wednesday, March 6, 2024 at 12:05:00\u202fAM UTC") == datetime(
        2024, 3, 6, 0, 5, tzinfo=UTC
    )
    assert parse_created_date("March 6, 2024 at 2:15:07 PM GMT+02:00") == datetime(
        2024, 3, 6, 14, 15, 7, tzinfo=timezone(timedelta(hours=2))
    )
    with pytest.raises(RecordError, match="created_date"):
        parse_created_date("6 mars 2024 14:15")
