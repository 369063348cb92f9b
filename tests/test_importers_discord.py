"""Discord: a DiscordChatExporter JSON channel and Discord's own data package (only the
owner's messages), written in tests/fixtures/discord as the tools write them."""

import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from cognitivetwin_core.data.importers import detect_importer, import_into, read_conversations
from cognitivetwin_core.data.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "discord"
CHANNEL = FIXTURES / "chat_exporter" / "Friends - Text Channels - general [111111111111111111].json"
PACKAGE = FIXTURES / "package"


def test_chat_exporter_channel():
    for path in (CHANNEL, CHANNEL.parent):
        assert detect_importer(path).name == "discord-chat-exporter"
    [conversation], report = read_conversations(CHANNEL)
    assert report.ok, report.rejected
    assert report.participants == {"zoe_m": 2, "lucas.alm": 1}
    assert report.skipped_messages == {"calls": 1, "joins": 1, "media omitted": 1, "pins": 1}
    assert conversation.title == "general (Friends)"
    assert [m.content for m in conversation.messages] == [
        "anyone up for a game tonight?",
        "I'm in, give me 10 min",  # a Reply
        "ok, starting in 5 minutes",  # edited: once, with its final text
    ]
    plus_one = timezone(timedelta(hours=1))
    assert conversation.messages[0].created_at == datetime(2024, 3, 4, 19, 0, 0, 123000, tzinfo=plus_one)
    assert conversation.messages[-1].created_at == datetime(2024, 3, 4, 18, 6, tzinfo=UTC)


def test_truncated_channel_keeps_what_came_before(tmp_path):
    broken = tmp_path / "general.json"
    text = CHANNEL.read_text(encoding="utf-8")
    broken.write_text(text[: text.index('"id": "1210000000000000005"')], encoding="utf-8")
    [conversation], report = read_conversations(broken, importer="discord-chat-exporter")
    assert len(conversation.messages) == 2 and report.truncated_at is not None


def test_data_package_holds_only_the_owner(tmp_path):
    assert detect_importer(PACKAGE).name == "discord-package"
    conversations, report = read_conversations(PACKAGE)
    assert report.ok, report.rejected
    assert report.owner == "zoe_m" and report.owner_only  # account/user.json, as DiscordChatExporter names her
    assert "no reply examples" in report.summary()
    assert report.participants == {"zoe_m": 5}
    assert report.skipped_messages == {"media omitted": 1}
    general = [c for c in conversations if c.title == "general in Friends"]
    assert [m.content for m in general[0].messages] == ["anyone up for a game tonight?", "ok, starting in 5 minutes"]
    dm = [c for c in conversations if c.title == "Direct Message with lucas.alm#0"]
    # messages.csv (older packages), newest first in the file: read oldest first; "lol" on two
    # days stays two messages, in two conversations.
    assert [[m.content for m in c.messages] for c in dm] == [["lol"], ["lol", 'he said "soon",\nthen left']]
    assert dm[0].messages[0].created_at == datetime(2023, 4, 28, 9, 0, tzinfo=UTC)
    assert dm[1].messages[-1].created_at == datetime(2023, 5, 3, 18, 45, 10, 200000, tzinfo=UTC)
    archive = tmp_path / "package.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_file():
                out.write(path, "Discord Data/" + path.relative_to(PACKAGE).as_posix())
    assert detect_importer(archive).name == "discord-package"
    with Workspace.open(tmp_path / "ws") as workspace:
        report = import_into(workspace, archive)
        assert report.messages_accepted == 5 and workspace.twin_speaker() == "zoe_m"


def test_channel_and_package_name_the_owner_alike(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, CHANNEL)
        import_into(workspace, PACKAGE)
        counts = {item.name: item.messages for item in workspace.speakers()}
    assert counts == {"zoe_m": 7, "lucas.alm": 1}
