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


def test_a_bad_record_and_a_broken_file_are_reported_where_they_are(tmp_path):
    import json
    import shutil

    copy = tmp_path / "Takeout"
    shutil.copytree(TAKEOUT, copy)
    space = copy / "Google Chat" / "Groups" / "Space AAAAx1y2z3" / "messages.json"
    data = json.loads(space.read_text(encoding="utf-8"))
    data["messages"][0]["created_date"] = "7 mars 2024 09:00"
    space.write_text(json.dumps(data, indent=2), encoding="utf-8")
    dm = copy / "Google Chat" / "Groups" / "DM 5UmLkJAAAAE" / "messages.json"
    text = dm.read_text(encoding="utf-8")
    dm.write_text(text[: text.index('"Sure, after lunch"')], encoding="utf-8")
    _conversations, report = read_conversations(copy)
    assert report.participants == {"Zoë Martins": 2}
    date_error = next(r for r in report.rejected if r.field == "created_date")
    assert date_error.file.endswith("messages.json") and date_error.record == 0 and date_error.line == 3
    assert report.truncated_at is not None
