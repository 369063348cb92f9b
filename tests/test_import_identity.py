"""Which conversations are the same (docs/data-and-model.md): equal texts said at other times or
by other people are other conversations, the same file imported twice is stored once, the
import's counts are what the workspace shows afterwards, a workspace stored under the older
identity (texts alone) migrates without losing anything and names the files to import again,
every chat of a WhatsApp zip is imported, and an unknown `--me` keeps nothing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from datetime import datetime, timedelta

import pytest

from cognitivetwin_core.cli import main
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.conversation_identity import content_hash
from cognitivetwin_core.data.importers import import_into
from cognitivetwin_core.data.workspace import DB_NAME, Workspace

START = datetime(2024, 3, 4, 20, 0)  # a Monday evening


def _chat_runs() -> list[list[tuple[str, str]]]:
    """Short evening chats, one a day: the same few lines again and again, some said by the other person."""
    runs = [[("Maya", "lol"), ("Jonas", "ok")] for _ in range(9)]  # the same two lines every evening
    runs += [[("Jonas", "lol"), ("Maya", "ok")] for _ in range(4)]  # the same words, the other person
    runs.append([("Maya", "lol")])
    runs.append([("Maya", "lol")])  # a whole conversation equal to the one before, a day later
    runs.append([("Maya", "see you"), ("Jonas", "see you"), ("Maya", "lol")])
    return runs


def _android_line(when: datetime, name: str, text: str) -> str:
    clock = when.strftime("%I:%M %p").lstrip("0")
    return f"{when.month}/{when.day}/{when.strftime('%y')}, {clock} - {name}: {text}"


def _whatsapp_text(runs) -> str:
    lines = [_android_line(START - timedelta(days=1), "Maya", "first day!")]
    for day, run in enumerate(runs):
        for minute, (name, text) in enumerate(run):
            lines.append(_android_line(START + timedelta(days=day, minutes=minute), name, text))
    return "\n".join(lines) + "\n"


def _expected(runs) -> tuple[int, int, dict[str, int]]:
    """(conversations, messages, messages per person) of the chat, the first day's line included."""
    people = {"Maya": 1, "Jonas": 0}
    for run in runs:
        for name, _ in run:
            people[name] += 1
    return len(runs) + 1, sum(people.values()), people


@pytest.fixture()
def chat_file(tmp_path):
    path = tmp_path / "WhatsApp Chat with Jonas.txt"
    path.write_text(_whatsapp_text(_chat_runs()), encoding="utf-8")
    return path


def _json_out(capsys, *argv) -> dict:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_equal_texts_at_other_times_or_from_other_people_are_all_kept(tmp_path, chat_file, capsys):
    conversations, messages, people = _expected(_chat_runs())
    workspace = str(tmp_path / "ws")
    assert main(["data", "import", str(chat_file), "--workspace", workspace, "--quiet", "--gap-hours", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"{conversations} conversations, {messages} messages accepted" in printed
    assert "already in the workspace" not in printed
    assert f"Maya ({people['Maya']} messages), Jonas ({people['Jonas']} messages)" in printed

    stats = _json_out(capsys, "data", "stats", "--workspace", workspace, "--json")
    assert (stats["conversations"], stats["messages"]) == (conversations, messages)
    assert stats["imports"][0]["duplicates"] == 0 and stats["imports_to_repeat"] == []
    speakers = _json_out(capsys, "data", "speakers", "--workspace", workspace, "--json")
    assert {item["name"]: item["messages"] for item in speakers["speakers"]} == people

    # The same file again is stored once: every conversation is a duplicate, nothing changes.
    assert main(["data", "import", str(chat_file), "--workspace", workspace, "--quiet", "--gap-hours", "2"]) == 0
    assert f"{conversations} already in the workspace (0 conversations, 0 messages added)" in capsys.readouterr().out
    stats = _json_out(capsys, "data", "stats", "--workspace", workspace, "--json")
    assert (stats["conversations"], stats["messages"]) == (conversations, messages)


def test_records_are_told_apart_by_their_own_ids_and_times(tmp_path):
    def line(messages, **fields) -> str:
        return json.dumps({**fields, "messages": messages}) + "\n"

    plain = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    monday = [{**message, "created_at": "2024-03-04T10:00:00+00:00"} for message in plain]
    friday = [{**message, "created_at": "2024-03-08T10:00:00+00:00"} for message in plain]
    path = tmp_path / "chats.jsonl"
    path.write_text(
        line(plain, id="a") + line(plain, id="b") + line(monday) + line(friday) + line(plain) + line(plain),
        encoding="utf-8",
    )
    with Workspace.open(tmp_path / "ws") as workspace:
        report = import_into(workspace, path)
        # Two own ids, two times; the two records without id or time cannot be told apart: one is kept.
        assert (report.conversations_accepted, report.duplicates, report.conversations_stored) == (6, 1, 5)
        assert workspace.count_conversations() == 5 and workspace.count_messages() == 10
        again = import_into(workspace, path)
        assert (again.duplicates, again.conversations_stored) == (6, 0)
        # What is read back has the identity it was stored under.
        for conversation in workspace.iter_conversations():
            stored = workspace._query("SELECT content_hash FROM conversations WHERE id=?", (conversation.id,))
            assert conversation.content_hash() == stored[0][0]


def test_the_fast_hash_is_the_identity():
    moment = datetime(2024, 3, 4, 10, 0, 5, 250)
    from datetime import UTC

    cases = [
        Conversation("a", "t", [Message("user", "lol", created_at=moment, speaker="Maya")]),
        Conversation("a", "t", [Message("user", "lol", created_at=moment.replace(tzinfo=UTC))]),
        Conversation("a", "t", [Message("user", 'say "hi"\n\x01\t\\', speaker='M "x"')], source_id="ü-1"),
        Conversation("a", "t", [Message("assistant", "ok"), Message("user", "ok", speaker="B")], source_id="7"),
    ]
    hashes = {conversation.content_hash() for conversation in cases}
    assert len(hashes) == len(cases)
    for conversation in cases:
        assert content_hash(conversation) == conversation.content_hash()
    monday = Conversation("a", "t", [Message("user", "lol", created_at=moment)])
    friday = Conversation("a", "t", [Message("user", "lol", created_at=moment + timedelta(days=4))])
    said_by_other = Conversation("a", "t", [Message("user", "lol", created_at=moment, speaker="Jonas")])
    assert len({c.content_hash() for c in (monday, friday, said_by_other)}) == 3


# ----- a workspace stored under the older identity -------------------------------------------------


def _text_only_hash(messages: list[tuple[str, str, str | None]]) -> str:
    """The older identity: role, text and speaker of each message, nothing else."""
    digest = hashlib.sha256()
    for role, content, speaker in messages:
        item = [role, content] if speaker is None else [role, content, speaker]
        digest.update(json.dumps(item, ensure_ascii=False).encode("utf-8") + b"\x00")
    return digest.hexdigest()


def _as_stored_by_the_older_identity(folder) -> int:
    """Turn a workspace back into schema 2 as the older identity would have left it: conversations
    whose texts equal an earlier one's dropped and counted as duplicates. Returns how many."""
    db = sqlite3.connect(folder / DB_NAME)
    seen: set[str] = set()
    dropped = 0
    for pk, import_id in db.execute("SELECT pk, import_id FROM conversations ORDER BY pk").fetchall():
        rows = db.execute(
            "SELECT role, content, speaker FROM messages WHERE conversation_pk=? ORDER BY turn_index", (pk,)
        ).fetchall()
        digest = _text_only_hash(rows)
        if digest in seen:
            db.execute("DELETE FROM messages WHERE conversation_pk=?", (pk,))
            db.execute("DELETE FROM conversations WHERE pk=?", (pk,))
            db.execute(
                "UPDATE imports SET duplicates=duplicates+1, conversations=conversations-1, "
                "messages=messages-? WHERE id=?",
                (len(rows), import_id),
            )
            dropped += 1
        else:
            seen.add(digest)
            db.execute("UPDATE conversations SET content_hash=? WHERE pk=?", (digest, pk))
    db.execute("ALTER TABLE conversations DROP COLUMN source_id")
    db.execute("ALTER TABLE imports DROP COLUMN duplicates_by_text")
    db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    db.commit()
    db.close()
    return dropped


def test_an_older_workspace_keeps_everything_and_names_the_file_to_import_again(tmp_path, chat_file, capsys):
    conversations, messages, people = _expected(_chat_runs())
    records = tmp_path / "records.jsonl"
    records.write_text(
        "".join(
            json.dumps({**({"id": f"r{index}"} if index % 2 else {}), "messages": [{"role": "user", "content": text}]})
            + "\n"
            for index, text in enumerate(["one", "two", "three", "four"])
        ),
        encoding="utf-8",
    )
    folder = tmp_path / "ws"
    with Workspace.open(folder) as workspace:
        import_into(workspace, chat_file, gap_hours=2)
        import_into(workspace, chat_file, gap_hours=2)  # twice: one note for the file, the first import's
        import_into(workspace, records)
        workspace.add_conversations([Conversation("api-1", "api", [Message("user", "by the app")])])
    lost = _as_stored_by_the_older_identity(folder)
    assert lost > 0

    with Workspace.open(folder, read_only=True) as workspace:
        kept = workspace.count_conversations()
        assert kept == conversations - lost + 4 + 1
        for conversation in workspace.iter_conversations():
            stored = workspace._query("SELECT content_hash FROM conversations WHERE id=?", (conversation.id,))
            assert conversation.content_hash() == stored[0][0]
        to_repeat = workspace.imports_to_repeat()
        assert [record["location"] for record in to_repeat] == [str(chat_file)]
        assert str(chat_file) in to_repeat[0]["advice"] and f"skipped {lost} conversations" in to_repeat[0]["advice"]
    capsys.readouterr()
    assert main(["data", "stats", "--workspace", str(folder)]) == 0
    assert f"Import {chat_file} again" in capsys.readouterr().out

    with Workspace.open(folder) as workspace:
        # The records (own ids and ids made from texts) and the chat are recognised as stored.
        assert import_into(workspace, records).duplicates == 4
        report = import_into(workspace, chat_file, gap_hours=2)
        assert (report.duplicates, report.conversations_stored) == (conversations - lost, lost)
        assert workspace.count_conversations() == conversations + 4 + 1
        named = {item.name: item.messages for item in workspace.speakers() if item.named}
        assert named == people
        assert workspace.imports_to_repeat() == []


# ----- a WhatsApp zip with several chats, and --me -------------------------------------------------


def test_every_chat_of_a_whatsapp_zip_is_imported(tmp_path, capsys):
    bob = [("Maya", "dinner?"), ("Bob", "yes")]
    carol = [("Maya", "dinner?"), ("Carol", "no, sorry")]
    path = tmp_path / "chats.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("WhatsApp Chat with Bob.txt", _whatsapp_text([bob]))
        archive.writestr("WhatsApp Chat with Carol.txt", _whatsapp_text([carol]))
    workspace = str(tmp_path / "ws")
    assert main(["data", "import", str(path), "--workspace", workspace, "--quiet"]) == 0
    printed = capsys.readouterr().out
    # Each chat: Maya's "first day!" (sent into both at the same minute: two conversations) and the dinner.
    assert "Chats (2): Bob, Carol" in printed and "4 conversations, 6 messages accepted" in printed
    assert 'speakers --me "Maya"' in printed  # both chats name the other person: Maya exported them
    stats = _json_out(capsys, "data", "stats", "--workspace", workspace, "--json")
    assert (stats["conversations"], stats["messages"]) == (4, 6)
    with Workspace.open(workspace, read_only=True) as ws:
        assert {summary.title for summary in ws.list_conversations()} == {"Bob", "Carol"}
        assert {item.name for item in ws.speakers() if item.named} == {"Maya", "Bob", "Carol"}


def test_an_unknown_me_keeps_nothing_of_the_import(tmp_path, chat_file, capsys):
    workspace = tmp_path / "ws"
    assert main(["data", "import", str(chat_file), "--workspace", str(workspace), "--quiet", "--me", "Nobody"]) == 2
    assert "'Nobody' is not a speaker" in capsys.readouterr().err
    with Workspace.open(workspace, read_only=True) as ws:
        assert (ws.count_conversations(), ws.imports(), ws.twin_speaker()) == (0, [], "assistant")
    assert main(["data", "import", str(chat_file), "--workspace", str(workspace), "--quiet", "--me", "maya"]) == 0
    assert "The twin speaks as Maya." in capsys.readouterr().out
    with Workspace.open(workspace, read_only=True) as ws:
        assert ws.count_conversations() == _expected(_chat_runs())[0] and ws.twin_speaker() == "Maya"
