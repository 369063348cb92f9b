"""One person across sources: the owner an export marks becomes the twin speaker, `data
speakers --link` makes one speaker of a person's names, numbers and handles, and the training
export and the privacy check see the new sources."""

import json
import sqlite3
from pathlib import Path

import pytest

from cognitivetwin_core.cli import main as cli_main
from cognitivetwin_core.data.exports import export_together
from cognitivetwin_core.data.importers import import_into
from cognitivetwin_core.data.privacy import scan_conversations
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures"
FACEBOOK = FIXTURES / "meta" / "facebook-zoemartins"
SIGTOP = FIXTURES / "signal" / "sigtop"


@pytest.fixture()
def chat_db(tmp_path) -> Path:
    path = tmp_path / "chat.db"
    db = sqlite3.connect(path)
    db.executescript((FIXTURES / "imessage" / "chat.db.sql").read_text(encoding="utf-8"))
    db.commit()
    db.close()
    return path


def _speakers(ws: str, capsys, *extra: str) -> dict:
    capsys.readouterr()
    assert cli_main(["data", "speakers", "--workspace", ws, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_one_person_across_three_sources(tmp_path, chat_db, capsys, tiny_model_dir):
    ws = str(tmp_path / "ws")
    assert cli_main(["data", "import", "--workspace", ws, str(FACEBOOK), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Recognised: Facebook Messenger download" in out
    assert "The twin speaks as Zoë Martins, the export's owner" in out
    for source in (chat_db, SIGTOP):
        assert cli_main(["data", "import", "--workspace", ws, str(source), "--quiet"]) == 0
    listed = _speakers(ws, capsys)
    counts = {item["name"]: item["messages"] for item in listed["speakers"]}
    assert counts["Zoë Martins"] == 3 and counts["zoe@icloud.com"] == 3 and counts["Me"] == 2
    assert listed["twin_speaker"] == "Me"  # the last export's owner: no one was chosen

    linked = _speakers(ws, capsys, "--link", "Zoë Martins", "zoe@icloud.com", "me")
    counts = {item["name"]: item["messages"] for item in linked["speakers"]}
    assert counts["Zoë Martins"] == 8 and "Me" not in counts and "zoe@icloud.com" not in counts
    assert linked["twin_speaker"] == "Zoë Martins"
    zoe = next(item for item in linked["speakers"] if item["name"] == "Zoë Martins")
    assert zoe["aliases"] == ["Me", "zoe@icloud.com"]

    with Workspace.open(ws) as workspace:
        summary = export_together(workspace, tmp_path / "train.jsonl", base_model=tiny_model_dir)
    assert summary.twin_speaker == "Zoë Martins"
    examples = [json.loads(line)["messages"] for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    mine = {m["content"] for messages in examples for m in messages if m["role"] == "assistant"}
    # Her words from Messenger, iMessage and Signal are the twin's; no one else's are.
    assert {"Sim! Até lá 👋", "Yes! Leaving at 7 🚗\nLook at this view", "Thursday works"} <= mine
    assert not any("Are you coming tonight?" in text for text in mine)

    # Chosen by the person: a later export's owner no longer changes it.
    assert cli_main(["data", "speakers", "--workspace", ws, "--me", "João Pereira"]) == 0
    assert cli_main(["data", "import", "--workspace", ws, str(FIXTURES / "google_chat" / "Takeout"), "--quiet"]) == 0
    assert _speakers(ws, capsys)["twin_speaker"] == "João Pereira"


def test_links_are_checked(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, SIGTOP)
        from cognitivetwin_core.data.person_identity import link_speakers

        with pytest.raises(InputError, match="not a speaker"):
            link_speakers(workspace, "Zoë", ["nobody"])
        with pytest.raises(InputError, match="role"):
            link_speakers(workspace, "user", ["Me"])


def test_ai_chat_imports_make_the_user_side_the_person(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        report = import_into(workspace, "demo")
        assert report.owner == "user" and report.owner_adopted
        assert workspace.twin_speaker() == "user"


def test_privacy_check_sees_the_new_sources(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, FIXTURES / "google_chat" / "Takeout")
        import_into(workspace, FIXTURES / "mail" / "All mail Including Spam and Trash.mbox")
        names = [item.name for item in workspace.speakers() if item.named]
        summary = scan_conversations(workspace.iter_conversations(), names)
    assert summary.messages_scanned == 9
    assert summary.counts.get("name", 0) >= 2  # "Thanks Marta", "Hi Lucas"
