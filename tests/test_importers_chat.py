"""Chat JSONL (Together format), the demo dataset, the registry and import_into: real-looking
files, broken ones with exact positions, strict mode, progress, de-duplication."""

import json

import pytest

from cognitivetwin_core.data.importers import (
    IMPORTERS,
    ImportProgress,
    StrictImportAborted,
    demo_dataset_path,
    detect_importer,
    import_into,
    read_conversations,
)
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import InputError


def line(messages, **extra) -> str:
    return json.dumps({"messages": messages, **extra}, ensure_ascii=False)


GOOD = [
    line(
        [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "How do I list hidden files?"},
            {"role": "assistant", "content": "Use `ls -a`."},
        ]
    ),
    line(
        [
            {"role": "user", "content": "Merci beaucoup, ça marche ✓", "created_at": "2026-03-01T10:00:00Z"},
            {"role": "assistant", "content": "De rien !", "created_at": 1772359260},
        ],
        conversation_id="fr-1",
        title="French",
    ),
]


@pytest.fixture()
def workspace(tmp_path):
    with Workspace.open(tmp_path / "ws") as opened:
        yield opened


def write_lines(path, lines, *, trailing_newline=True):
    data = "\n".join(lines) + ("\n" if trailing_newline else "")
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_reads_a_real_looking_file(tmp_path):
    path = write_lines(tmp_path / "chats.jsonl", GOOD)
    conversations, report = read_conversations(path)
    assert report.ok and report.importer == "chat-jsonl"
    assert (report.conversations_accepted, report.messages_accepted) == (2, 5)
    first, second = conversations
    assert [m.role for m in first.messages] == ["system", "user", "assistant"]
    assert first.id.startswith("chats-") and first.source == "chat-jsonl"
    assert second.id == "fr-1" and second.title == "French"
    assert second.messages[0].content == "Merci beaucoup, ça marche ✓"
    assert second.messages[0].created_at.isoformat() == "2026-03-01T10:00:00+00:00"
    assert second.messages[1].created_at.timestamp() == 1772359260
    # Without ids, the same content gets the same id on every read.
    again, _ = read_conversations(path)
    assert again[0].id == first.id


def test_every_kind_of_bad_record_is_reported_where_it_is(tmp_path):
    lines = [
        GOOD[0],  # 1 ok
        '{"messages": [{"role": "user", "content": "hi"}',  # 2 bad JSON
        line([{"role": "user"}]),  # 3 missing content
        line([{"role": "wizard", "content": "abracadabra"}]),  # 4 unknown role
        line([]),  # 5 empty conversation
        line([{"role": "user", "content": "   "}]),  # 6 empty message
        line([{"role": "user", "content": 42}]),  # 7 wrong type
        json.dumps({"messages": "hello"}),  # 8 wrong type
        "[1, 2]",  # 9 not an object
        "",  # 10 blank: skipped
        line([{"role": "user", "content": "when?", "created_at": "yesterday"}]),  # 11 bad timestamp
        line([{"role": "user", "content": "x", "patterns": ["telepathy"]}]),  # 12 unknown pattern
        GOOD[1],  # 13 ok
    ]
    path = write_lines(tmp_path / "mixed.jsonl", lines)
    conversations, report = read_conversations(path)
    assert [c.id for c in conversations][1] == "fr-1" and len(conversations) == 2
    found = [(r.line, r.field, r.reason) for r in report.rejected]
    assert found == [
        (2, None, "bad JSON: Expecting ',' delimiter"),
        (3, "messages[0].content", "missing content"),
        (4, "messages[0].role", found[2][2]),
        (5, "messages", "empty conversation (no messages)"),
        (6, "messages[0].content", "empty content"),
        (7, "messages[0].content", "content must be a string, got int"),
        (8, "messages", "messages must be a list, got str"),
        (9, None, "a record must be a JSON object, got list"),
        (11, "messages[0].created_at", found[8][2]),
        (12, "messages[0].patterns", found[9][2]),
    ]
    assert found[2][2].startswith("unknown role 'wizard'")
    assert "not ISO 8601" in found[8][2] and "telepathy" in found[9][2]
    assert report.rejected[0].column == 48
    assert str(report.rejected[1]) == f"{path}:3, field 'messages[0].content': missing content"
    assert report.truncated_at is None


def test_non_utf8_bytes_reject_only_their_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    bad = line([{"role": "user", "content": "café"}]).encode("utf-8").replace("é".encode(), b"\xe9")
    path.write_bytes(GOOD[0].encode() + b"\n" + bad + b"\n" + GOOD[1].encode() + b"\n")
    conversations, report = read_conversations(path)
    assert len(conversations) == 2
    [rejection] = report.rejected
    assert (rejection.line, rejection.reason) == (2, "not UTF-8 text (byte 0xe9)")
    assert rejection.column == bad.index(b"\xe9") + 1


def test_a_truncated_last_line_is_reported_as_the_file_ending_early(tmp_path):
    cut = GOOD[1][: len(GOOD[1]) // 2]
    path = write_lines(tmp_path / "cut.jsonl", [GOOD[0], cut], trailing_newline=False)
    conversations, report = read_conversations(path)
    assert len(conversations) == 1
    assert report.truncated_at.startswith("line 2, column")
    assert report.rejected[0].line == 2 and "truncated" in report.rejected[0].reason


def test_a_one_megabyte_message_is_kept_whole(tmp_path):
    big = "word " * 200_000 + "end"
    path = write_lines(
        tmp_path / "big.jsonl",
        [line([{"role": "user", "content": "summarise"}, {"role": "assistant", "content": big}])],
    )
    conversations, report = read_conversations(path)
    assert report.ok and conversations[0].messages[1].content == big


def test_strict_aborts_and_writes_nothing(tmp_path, workspace):
    path = write_lines(tmp_path / "mixed.jsonl", [GOOD[0], line([{"role": "wizard", "content": "x"}]), GOOD[1]])
    with pytest.raises(StrictImportAborted) as caught:
        import_into(workspace, path, strict=True)
    assert caught.value.rejection.line == 2
    assert "nothing written" in str(caught.value) and f"{path}:2" in str(caught.value)
    assert workspace.count_conversations() == 0 and workspace.imports() == []
    report = import_into(workspace, path)
    assert report.conversations_accepted == 2 and len(report.rejected) == 1
    assert workspace.count_conversations() == 2


def test_import_into_reports_duplicates_and_stores_the_report(tmp_path, workspace):
    path = write_lines(tmp_path / "chats.jsonl", GOOD + [line([{"role": "user", "content": "x"}, 1])])
    ticks = []
    first = import_into(workspace, path, progress=ticks.append)
    assert (first.conversations_accepted, first.duplicates) == (2, 0)
    assert ticks and isinstance(ticks[-1], ImportProgress) and ticks[-1].unit == "bytes"
    assert ticks[-1].done == ticks[-1].total == path.stat().st_size and ticks[-1].fraction == 1.0
    second = import_into(workspace, path)
    assert (second.conversations_accepted, second.duplicates) == (2, 2)
    assert workspace.count_conversations() == 2
    stored = workspace.imports()
    assert len(stored) == 2 and stored[0]["rejected"] == 1
    assert stored[0]["report"]["rejected"][0]["field"] == "messages[1]"


def test_demo_dataset(workspace):
    assert demo_dataset_path().is_file()
    conversations, report = read_conversations("demo")
    assert report.ok and len(conversations) >= 40
    lengths = [len(c.messages) for c in conversations]
    assert min(lengths) == 2 and max(lengths) == 30
    assert any("```" in m.content for c in conversations for m in c.messages)
    assert sum(1 for c in conversations if not any("```" in m.content for m in c.messages)) >= 20
    users = {
        person: [m.content for c in conversations if f"-{person}-" in c.id for m in c.messages if m.role == "user"]
        for person in ("sam", "margaret")
    }
    mean_words = {person: sum(len(t.split()) for t in texts) / len(texts) for person, texts in users.items()}
    lowercase_share = sum(t == t.lower() for t in users["sam"]) / len(users["sam"])
    assert mean_words["margaret"] > 3 * mean_words["sam"]  # two clearly different styles
    assert lowercase_share > 0.8 and not any(t == t.lower() for t in users["margaret"])
    report = import_into(workspace, "demo")
    assert report.conversations_accepted == len(conversations)
    assert workspace.count_conversations(source="demo") == len(conversations)


def test_registry_and_detection(tmp_path):
    assert set(IMPORTERS) == {
        "chat-jsonl",
        "trajectory-jsonl",
        "sharegpt",
        "chatgpt",
        "whatsapp",
        "telegram",
        "facebook-messenger",
        "instagram",
        "imessage",
        "discord-chat-exporter",
        "discord-package",
        "signal",
        "google-chat",
        "mbox",
        "supabase",
        "demo",
    }
    assert all(info.title for info in IMPORTERS.values())
    chat = write_lines(tmp_path / "a.jsonl", GOOD)
    trajectory = write_lines(tmp_path / "b.jsonl", [json.dumps({"messages": [], "trajectory": {}})])
    sharegpt_lines = write_lines(tmp_path / "c.jsonl", [json.dumps({"conversations": []})])
    sharegpt = tmp_path / "d.json"
    sharegpt.write_text('[{"id": "x", "conversations": [{"from": "human", "value": "hi"}]}]')
    chatgpt = tmp_path / "conversations.json"
    chatgpt.write_text('[{"title": "t", "create_time": 1, "mapping": {}, "current_node": "a"}]')
    assert detect_importer(chat).name == "chat-jsonl"
    assert detect_importer(trajectory).name == "trajectory-jsonl"
    assert detect_importer(sharegpt_lines).name == "sharegpt"
    assert detect_importer(sharegpt).name == "sharegpt"
    assert detect_importer(chatgpt).name == "chatgpt"
    assert detect_importer(tmp_path).name == "chatgpt"  # an export folder
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(InputError, match="Cannot tell the format"):
        detect_importer(other)
    with pytest.raises(InputError, match="No such file"):
        read_conversations(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="Unknown importer"):
        read_conversations(chat, importer="nope")


def test_many_rejections_are_counted_and_the_first_kept_in_detail(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", ["{oops"] * 1500 + GOOD)
    conversations, report = read_conversations(path)
    assert len(conversations) == 2
    assert report.rejected_total == 1500 and len(report.rejected) == 1000
    assert report.to_dict()["rejected_count"] == 1500 and "1500 records rejected" in report.summary()


def test_cli_import_reports_rejections_and_strict_exits_non_zero(tmp_path, capsys):
    from cognitivetwin_core.cli import main

    path = write_lines(tmp_path / "mixed.jsonl", [GOOD[0], line([{"role": "wizard", "content": "x"}])])
    workspace = str(tmp_path / "ws")
    assert main(["data", "import", str(path), "--workspace", workspace, "--strict", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert f"{path}:2, field 'messages[0].role'" in captured.err and "nothing written" in captured.err
    assert main(["data", "import", str(path), "--workspace", workspace, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 conversations, 3 messages accepted, 1 records rejected" in out
    assert f"  {path}:2, field 'messages[0].role': unknown role 'wizard'" in out
    assert main(["data", "reannotate", "--workspace", workspace]) == 0
    assert "Re-annotated 0 conversations" in capsys.readouterr().out
    assert main(["data", "import", "--workspace", workspace]) == 2
    assert "Give either a PATH" in capsys.readouterr().err
