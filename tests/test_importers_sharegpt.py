"""ShareGPT JSON: streamed record by record; truncated dumps keep every complete record and
say where the file ends; bad records are rejected with their record number, line and field."""

import json

import pytest

from cognitivetwin_core.data.importers import import_into, json_stream, read_conversations
from cognitivetwin_core.data.workspace import Workspace


def record(number, turns=None, **extra):
    turns = (
        turns
        if turns is not None
        else [
            {"from": "human", "value": f"Question {number}: how do I sort a dict by value?"},
            {"from": "gpt", "value": "Use `sorted(d.items(), key=lambda kv: kv[1])`.\n\nIt returns a list of pairs."},
        ]
    )
    return {"id": f"sg-{number}", "conversations": turns, **extra}


def dump(path, records, *, indent=None):
    path.write_text(json.dumps(records, ensure_ascii=False, indent=indent), encoding="utf-8")
    return path


@pytest.fixture(params=[64, 1 << 20], ids=["tiny-chunks", "default-chunks"])
def chunk(request, monkeypatch):
    """Run each test with 64-byte reads too, so records straddle many chunk boundaries."""
    monkeypatch.setattr(json_stream, "_CHUNK", request.param)
    return request.param


def test_reads_a_real_looking_dump(tmp_path, chunk):
    records = [record(i) for i in range(50)]
    records[3] = record(
        3,
        [
            {"from": "system", "value": "You are helpful."},
            {"from": "human", "value": "Écris un haïku 🌸"},
            {"from": "chatgpt", "value": "Fleurs de cerisier..."},
            {"from": "bing", "value": "(search results)"},
            {"from": "function", "value": '{"temp": 21}'},
            {"from": "bard", "value": "It is 21 degrees."},
        ],
    )
    path = dump(tmp_path / "sharegpt.json", records, indent=2)
    conversations, report = read_conversations(path)
    assert report.ok and report.importer == "sharegpt"
    assert len(conversations) == 50 and conversations[0].id == "sg-0"
    assert [m.role for m in conversations[3].messages] == [
        "system",
        "user",
        "assistant",
        "assistant",
        "tool",
        "assistant",
    ]
    assert conversations[3].messages[1].content == "Écris un haïku 🌸"


def test_truncated_dump_keeps_complete_records_and_says_where_it_ends(tmp_path, chunk):
    path = dump(tmp_path / "cut.json", [record(i) for i in range(20)], indent=2)
    text = path.read_text(encoding="utf-8")
    cut_at = text.index('"sg-15"') + 40  # inside record 15
    path.write_text(text[:cut_at], encoding="utf-8")
    conversations, report = read_conversations(path)
    assert [c.id for c in conversations] == [f"sg-{i}" for i in range(15)]
    [rejection] = report.rejected
    expected_line = text[: text.index('"sg-15"')].count("\n")  # the line of record 15's opening brace
    assert (rejection.record, rejection.line) == (15, expected_line)
    assert "truncated" in rejection.reason
    assert report.truncated_at.startswith(f"line {expected_line}, column 3, inside this record (record 15)")
    assert "15 complete records" in report.truncated_at


def test_truncated_between_records(tmp_path, chunk):
    path = dump(tmp_path / "cut.json", [record(i) for i in range(3)])
    text = path.read_text()
    path.write_text(text[:-1] + ",")  # the closing ']' is gone
    conversations, report = read_conversations(path)
    assert len(conversations) == 3
    assert "before the closing ']'" in report.truncated_at and report.rejected[0].record == 3


def test_bad_records_are_rejected_with_their_position(tmp_path, chunk):
    records = [
        record(0),
        record(1, [{"from": "human", "value": "hi"}, {"from": "narrator", "value": "Meanwhile..."}]),
        record(2, []),
        record(3, [{"from": "human", "value": ""}]),
        record(4, [{"from": "human"}]),
        record(5, [{"from": "human", "value": ["not", "text"]}]),
        {"id": "sg-6", "conversations": "oops"},
        {"id": "sg-7"},
        "just a string",
        record(9, [{"value": "who said this?"}]),
        record(10),
    ]
    path = dump(tmp_path / "bad.json", records, indent=1)
    conversations, report = read_conversations(path)
    assert [c.id for c in conversations] == ["sg-0", "sg-10"]
    found = [(r.record, r.field, r.reason) for r in report.rejected]
    assert found[0][:2] == (1, "conversations[1].from") and "unknown speaker 'narrator'" in found[0][2]
    assert found[1:] == [
        (2, "conversations", "empty conversation (no messages)"),
        (3, "conversations[0].value", "empty content"),
        (4, "conversations[0].value", "missing content"),
        (5, "conversations[0].value", "content must be a string, got list"),
        (6, "conversations", "conversations must be a list, got str"),
        (7, "conversations", "missing conversations"),
        (8, None, "a record must be a JSON object, got str"),
        (9, "conversations[0].from", "missing speaker"),
    ]
    lines = path.read_text().splitlines()
    # Each rejection's line is where its record starts.
    assert '"sg-1"' in lines[report.rejected[0].line] or '"sg-1"' in lines[report.rejected[0].line - 1 + 1]
    assert lines[report.rejected[0].line - 1].strip() == "{"


def test_non_utf8_bytes_reject_only_their_record(tmp_path, chunk):
    path = dump(tmp_path / "latin.json", [record(0), record(1, [{"from": "human", "value": "na\u00efve"}]), record(2)])
    data = path.read_bytes().replace("\u00ef".encode(), b"\xef")  # a lone Latin-1 byte
    path.write_bytes(data)
    conversations, report = read_conversations(path)
    assert [c.id for c in conversations] == ["sg-0", "sg-2"]
    [rejection] = report.rejected
    assert (rejection.record, rejection.field) == (1, "conversations[0].value")
    assert rejection.reason.startswith("not UTF-8 text")


def test_a_syntax_error_mid_file_keeps_what_came_before(tmp_path, chunk):
    text = json.dumps([record(0), record(1), record(2)], indent=2)
    broken = text.replace('"sg-1",', '"sg-1" "oops",', 1)
    path = tmp_path / "broken.json"
    path.write_text(broken)
    conversations, report = read_conversations(path)
    assert [c.id for c in conversations] == ["sg-0"]
    [rejection] = report.rejected
    error_line = broken[: broken.index('"oops"')].count("\n") + 1
    assert rejection.line == error_line and rejection.record == 1
    assert rejection.reason.startswith("bad JSON: Expecting ','")


def test_one_megabyte_message_and_jsonl_variant(tmp_path, chunk):
    big = "lorem ipsum " * 90_000
    path = dump(tmp_path / "big.json", [record(0, [{"from": "human", "value": "go"}, {"from": "gpt", "value": big}])])
    conversations, report = read_conversations(path)
    assert report.ok and conversations[0].messages[1].content == big
    lines = tmp_path / "sharegpt.jsonl"
    lines.write_text("\n".join(json.dumps(record(i)) for i in range(3)) + "\n")
    conversations, report = read_conversations(lines)
    assert report.importer == "sharegpt" and len(conversations) == 3


def test_empty_and_non_array_files(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    _, report = read_conversations(empty, importer="sharegpt")
    assert report.rejected[0].reason == "the file is empty"
    empty_list = tmp_path / "none.json"
    empty_list.write_text("[ ]")
    conversations, report = read_conversations(empty_list, importer="sharegpt")
    assert conversations == [] and report.ok


def test_import_streams_into_a_workspace(tmp_path):
    path = dump(tmp_path / "sharegpt.json", [record(i) for i in range(300)])
    with Workspace.open(tmp_path / "ws") as workspace:
        report = import_into(workspace, path)
        assert report.conversations_accepted == 300 and workspace.count_messages() == 600
        assert workspace.get_conversation("sg-299").messages[0].role == "user"


def test_columns_on_a_single_line_dump(tmp_path, chunk):
    text = json.dumps([record(i) for i in range(10)])  # real dumps are often one huge line
    start = text.index('{"id": "sg-7"')
    path = tmp_path / "oneline.json"
    path.write_text(text[: start + 30])
    conversations, report = read_conversations(path)
    assert len(conversations) == 7
    assert (report.rejected[0].line, report.rejected[0].column) == (1, start + 1)
