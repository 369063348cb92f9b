"""Facebook Messenger and Instagram from Meta's "Download your information" (JSON): the
fixtures in tests/fixtures/meta are laid out as the download is (message_N.json newest first,
Meta's latin-1-escaped UTF-8), with profile files naming the owner."""

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.data.importers import detect_importer, import_into, read_conversations
from cognitivetwin_core.data.importers.meta_dyi import repair_text
from cognitivetwin_core.data.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "meta"
FACEBOOK = FIXTURES / "facebook-zoemartins"
INSTAGRAM = FIXTURES / "instagram-zoe.martins"


def test_repair_text_undoes_meta_mojibake_and_leaves_right_text_alone():
    assert repair_text("Ol\u00c3\u00a1 Zo\u00c3\u00ab! \u00f0\u009f\u0098\u008a") == "Olá Zoë! 😊"
    for right in ("café", "Até sexta — café às 19h?", "naïve “quotes” ✓", "plain ascii", "Ã©tude"[1:]):
        assert repair_text(right) == right


def test_facebook_download_folder():
    assert detect_importer(FACEBOOK).name == "facebook-messenger"
    conversations, report = read_conversations(FACEBOOK)
    assert report.ok, report.rejected
    assert report.participants == {"João Pereira": 4, "Zoë Martins": 3, "Marta Costa": 2}
    assert report.skipped_messages == {"calls": 1, "media omitted": 2, "reactions": 2, "system": 1, "unsent": 1}
    assert report.owner == "Zoë Martins"  # from personal_information/profile_information
    # message_2.json (older) comes first, each file read oldest first; the group is cut at the night.
    assert [len(c.messages) for c in conversations] == [5, 3, 1]
    chat = conversations[0].messages
    assert [m.content for m in chat] == [
        "Olá Zoë! Tudo bem?",
        "Tudo ótimo 😊 e contigo?",
        "Bora jantar sexta? Já reservei às 20h.",
        "Sim! Até lá 👋",
        "Até sexta — café às 19h?",  # written as real UTF-8: left as it is
    ]
    assert chat[0].created_at == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    assert chat[-1].created_at == datetime(2024, 3, 1, 9, 10, tzinfo=UTC)
    assert conversations[1].title == "Os Três"
    assert [m.speaker for m in conversations[1].messages] == ["Marta Costa", "João Pereira", "Zoë Martins"]
    assert conversations[2].messages[0].created_at == datetime(2024, 3, 6, 12, 0, tzinfo=UTC)


def test_a_zip_of_the_whole_download(tmp_path):
    archive = tmp_path / "facebook-zoemartins-2024-03-10-abc.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(FACEBOOK.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(FACEBOOK).as_posix())
    assert detect_importer(archive).name == "facebook-messenger"
    conversations, report = read_conversations(archive)
    assert report.participants == {"João Pereira": 4, "Zoë Martins": 3, "Marta Costa": 2}
    assert report.owner == "Zoë Martins"
    assert conversations[0].messages[1].content == "Tudo ótimo 😊 e contigo?"


def test_one_chat_file_and_a_broken_part(tmp_path):
    chat = tmp_path / "messages" / "inbox" / "joaopereira_10158"
    shutil.copytree(FACEBOOK / "your_facebook_activity" / "messages" / "inbox" / "joaopereira_10158", chat)
    part = json.loads((chat / "message_2.json").read_text(encoding="utf-8"))
    del part["messages"][0]["timestamp_ms"]  # the newest message of the older file
    (chat / "message_2.json").write_text(json.dumps(part), encoding="utf-8")
    conversations, report = read_conversations(chat / "message_1.json")
    assert report.importer == "facebook-messenger"
    # Only message_1.json is read when one file is given.
    assert [m.content for m in conversations[0].messages][0] == "Bora jantar sexta? Já reservei às 20h."
    conversations, report = read_conversations(tmp_path)
    [rejection] = report.rejected
    assert rejection.field == "messages[0].timestamp_ms" and rejection.file.endswith("message_2.json")
    assert report.skipped_messages.get("calls") is None  # the broken record was the call


def test_instagram_download_and_owner_becomes_the_twin_speaker(tmp_path):
    assert detect_importer(INSTAGRAM).name == "instagram"
    conversations, report = read_conversations(INSTAGRAM)
    assert report.participants == {"Lucas Almeida": 2, "Zoë Martins": 1}
    assert report.skipped_messages == {"media omitted": 1, "reactions": 1}
    assert [m.content for m in conversations[0].messages] == [
        "você viu o show?",
        "vi sim!! foi incrível 🤩",
        "saudades",
    ]
    assert conversations[0].messages[-1].created_at == datetime(2024, 3, 8, 21, 5, tzinfo=UTC)
    with Workspace.open(tmp_path / "ws") as workspace:
        report = import_into(workspace, INSTAGRAM)
        assert report.owner == "Zoë Martins" and report.owner_adopted
        assert workspace.twin_speaker() == "Zoë Martins"


def test_a_chat_folder_or_the_inbox_on_its_own():
    inbox = FACEBOOK / "your_facebook_activity" / "messages" / "inbox"
    for folder, participants in (
        (inbox, {"João Pereira": 4, "Zoë Martins": 3, "Marta Costa": 2}),
        (inbox / "joaopereira_10158", {"João Pereira": 3, "Zoë Martins": 2}),
    ):
        assert detect_importer(folder).name == "facebook-messenger"
        conversations, report = read_conversations(folder)
        assert report.participants == participants
        # The same chat gets the same ids however it is imported: a second import adds nothing.
        assert conversations[0].id == read_conversations(FACEBOOK)[0][0].id
