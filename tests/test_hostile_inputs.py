"""Hostile and unlucky inputs through the real CLI: each is one plain sentence on
stderr naming the path, a non-zero exit, no traceback, nothing hung, and nothing the user
had is lost. Families: hangs, everyday errors (unreadable, wrong kind, bad names, damaged
archives, deep nesting, damaged databases, full and read-only disks), unbounded records,
split or partial imports, and the smaller ones (empty files, escape sequences, a mistyped
workspace, refused starts, the README's commands, the seed's variables).

Output folders are in test_output_dirs.py, readers under a writer in
test_workspace_readers.py, interrupted imports in test_interrupted_import.py.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cognitivetwin_core.cli import main
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.workspace import DB_NAME, Workspace
from cognitivetwin_core.errors import CognitiveTwinError
from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = WORK_TIMEOUT_S  # a hang fails the test instead of blocking the suite


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cognitivetwin_core", *args],
        cwd=cwd or REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "COGNITIVETWIN_IMPORT_WORKERS": "0", **(env or {})},
        capture_output=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def refused(result: subprocess.CompletedProcess, *names: str) -> str:
    """The refusal's sentence, checked: non-zero exit, one plain stderr line naming `names`."""
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode != 0, (result.stdout, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def chatgpt_record(title: str = "t", text: str = "hello", **changes) -> dict:
    record = {
        "title": title,
        "current_node": "c",
        "mapping": {
            "a": {"id": "a", "parent": None, "children": ["b"], "message": None},
            "b": {"id": "b", "parent": "a", "children": ["c"], "message": _message("user", text, 1)},
            "c": {"id": "c", "parent": "b", "children": [], "message": _message("assistant", "hi " + text, 2)},
        },
    }
    record.update(changes)
    return record


def _message(role: str, text: str, at: int) -> dict:
    return {"author": {"role": role}, "content": {"content_type": "text", "parts": [text]}, "create_time": at}


def chat_line(identifier: str, text: str = "question?") -> str:
    messages = [{"role": "user", "content": text}, {"role": "assistant", "content": "answer."}]
    return json.dumps({"id": identifier, "messages": messages}) + "\n"


@pytest.fixture()
def workspace(tmp_path) -> Path:
    """A workspace with two conversations; tests check they survive."""
    path = tmp_path / "ws"
    with Workspace.open(path) as ws:
        ws.add_conversations(
            [
                Conversation(f"keep{i}", "test", [Message("user", f"mine {i}"), Message("assistant", "ok")])
                for i in range(2)
            ]
        )
    return path


def stored(workspace: Path) -> tuple[int, int]:
    """(conversations, imports) in the workspace."""
    with sqlite3.connect(workspace / DB_NAME) as db:
        return (
            db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0],
            db.execute("SELECT COUNT(*) FROM imports").fetchone()[0],
        )


def import_(path, workspace: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli("data", "import", os.fsdecode(path), "--workspace", str(workspace), "--quiet", *extra)


# ----- hangs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        "children_cycle_without_current_node",
        "parent_cycle",
        "node_is_its_own_parent",
        "parent_is_a_list",
        "child_is_an_object",
        "current_node_is_a_number",
    ],
)
def test_broken_chatgpt_trees_are_rejected_records_not_hangs(tmp_path, workspace, change):
    bad = chatgpt_record("bad")
    mapping = bad["mapping"]
    if change == "children_cycle_without_current_node":
        del bad["current_node"]
        mapping["c"]["children"] = ["b"]
    elif change == "parent_cycle":
        mapping["a"]["parent"] = "c"
        mapping["d"] = {"id": "d", "parent": None, "children": [], "message": None}
    elif change == "node_is_its_own_parent":
        mapping["c"]["parent"] = "c"
    elif change == "parent_is_a_list":
        mapping["c"]["parent"] = ["b"]
    elif change == "child_is_an_object":
        del bad["current_node"]
        mapping["b"]["children"] = [{"id": "c"}]
    elif change == "current_node_is_a_number":
        bad["current_node"] = 7
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([bad, chatgpt_record("good")]), encoding="utf-8")
    result = import_(path, workspace)
    out = result.stdout.decode()
    assert "Traceback" not in result.stderr.decode()
    assert "1 conversations" in out and "1 records rejected" in out, out
    assert stored(workspace)[0] == 3


def test_a_fifo_is_refused_instead_of_blocking(tmp_path, workspace):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    refused(import_(fifo, workspace), str(fifo), "not a regular file")


# ----- everyday errors -----------------------------------------------------------------------------


def test_a_folder_a_path_below_a_file_and_a_missing_file(tmp_path, workspace):
    folder = tmp_path / "folder"
    folder.mkdir()
    refused(import_(folder, workspace), str(folder), "folder")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    refused(import_(a_file / "data.jsonl", workspace), "notes.txt")
    refused(import_(tmp_path / "missing.jsonl", workspace), "missing.jsonl")
    assert stored(workspace) == (2, 1)


def test_a_socket_and_a_link_loop(tmp_path, workspace):
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "s.jsonl"))
        refused(import_(tmp_path / "s.jsonl", workspace), "s.jsonl")
    finally:
        server.close()
    os.symlink(tmp_path / "loop.jsonl", tmp_path / "loop.jsonl")
    refused(import_(tmp_path / "loop.jsonl", workspace), "loop.jsonl")


def test_a_file_name_that_is_not_utf8(tmp_path, workspace):
    name = os.fsencode(tmp_path) + b"/caf\xe9.jsonl"
    with open(name, "wb") as handle:
        handle.write(chat_line("x").encode())
    sentence = refused(import_(name, workspace), "caf\\xe9.jsonl", "not UTF-8")
    assert "rename" in sentence
    assert stored(workspace) == (2, 1)


def test_a_file_that_cannot_be_opened(tmp_path, workspace, monkeypatch, capsys):
    """Permission denied (root reads everything, so the open itself is made to fail)."""
    path = tmp_path / "private.jsonl"
    path.write_text(chat_line("x"), encoding="utf-8")
    real_open = open

    def denied(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    assert main(["data", "import", str(path), "--workspace", str(workspace), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert str(path) in err and "permission" in err.lower() and len(err.strip().splitlines()) == 1


def test_damaged_zips_import_nothing(tmp_path, workspace):
    good = tmp_path / "export.zip"
    with zipfile.ZipFile(good, "w") as archive:  # stored: the bytes can be damaged in place
        archive.writestr("conversations.json", json.dumps([chatgpt_record(text=f"n{i}") for i in range(20)]))
    data = good.read_bytes()
    bad_crc = tmp_path / "bad-crc.zip"
    at = data.index(b"n19")
    bad_crc.write_bytes(data[:at] + b"N" + data[at + 1 :])
    refused(import_(bad_crc, workspace), "bad-crc.zip", "damaged")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    result = import_(truncated, workspace)
    assert result.returncode != 0 and "Traceback" not in result.stderr.decode()
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04" + os.urandom(2000))
    refused(import_(garbage, workspace), "garbage.zip")
    assert stored(workspace) == (2, 1)  # nothing of the damaged archives was kept


def test_a_zip_with_an_encrypted_member_says_so(tmp_path, workspace):
    path = tmp_path / "locked.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/conversations.json", json.dumps([chatgpt_record()]))
        archive.writestr("b/conversations.json", json.dumps([chatgpt_record(text="other")]))
    data = bytearray(path.read_bytes())
    # Mark the first member encrypted (general purpose flag bit 0) in its local and central headers.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature)
        data[at + offset] |= 1
    path.write_bytes(bytes(data))
    result = import_(path, workspace)
    out = result.stdout.decode()
    assert "Traceback" not in result.stderr.decode()
    assert "a/conversations.json: the file is encrypted" in out and "1 conversations" in out


@pytest.mark.parametrize("form", ["jsonl", "json-array"])
def test_deep_nesting_is_one_rejected_record(tmp_path, workspace, form):
    deep = "[" * 200_000 + "]" * 200_000
    if form == "jsonl":
        path = tmp_path / "deep.jsonl"
        path.write_text(chat_line("a") + deep + "\n" + chat_line("b", "second?"), encoding="utf-8")
    else:
        path = tmp_path / "conversations.json"
        records = [json.dumps(chatgpt_record("a")), deep, json.dumps(chatgpt_record("b", text="second"))]
        path.write_text("[" + ",".join(records) + "]", encoding="utf-8")
    result = import_(path, workspace)
    out = result.stdout.decode()
    assert "Traceback" not in result.stderr.decode(), result.stderr.decode()[-500:]
    assert "2 conversations" in out and "nested too deeply" in out, out
    assert stored(workspace)[0] == 4


def test_a_damaged_workspace_database_is_a_sentence_and_is_left_alone(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    junk = os.urandom(8192)
    (workspace / DB_NAME).write_bytes(junk)
    data = tmp_path / "a.jsonl"
    data.write_text(chat_line("a"), encoding="utf-8")
    refused(cli("data", "list", "--workspace", str(workspace)), str(workspace / DB_NAME), "damaged")
    refused(import_(data, workspace), str(workspace / DB_NAME))
    assert (workspace / DB_NAME).read_bytes() == junk


def test_a_workspace_below_a_file(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    data = tmp_path / "a.jsonl"
    data.write_text(chat_line("a"), encoding="utf-8")
    refused(import_(data, a_file / "ws"), "notes.txt")
    refused(import_(data, a_file), "notes.txt", "is a file")
    assert a_file.read_text(encoding="utf-8") == "x"


def test_export_to_bad_places_keeps_what_was_there(tmp_path, workspace):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    export = ("data", "export", "--format", "trajectory", "--workspace", str(workspace), "--out")
    refused(cli(*export, str(a_file / "out.jsonl")), "notes.txt")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "mine.txt").write_text("mine", encoding="utf-8")
    refused(cli(*export, str(folder)), str(folder), "folder")
    assert (folder / "mine.txt").read_text(encoding="utf-8") == "mine"
    # A read-only place, even for root: sysfs.
    refused(cli(*export, "/sys/cognitivetwin-export.jsonl"), "/sys/cognitivetwin-export.jsonl")
    assert a_file.read_text(encoding="utf-8") == "x"


def test_a_full_disk_during_an_export_keeps_the_old_file(tmp_path, workspace, monkeypatch, capsys):
    out = tmp_path / "train.jsonl"
    out.write_text("the previous export\n", encoding="utf-8")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("cognitivetwin_core.atomic_files.os.fsync", full)
    code = main(["data", "export", "--format", "trajectory", "--workspace", str(workspace), "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and str(out) in err and "disk is full" in err and "Traceback" not in err
    assert out.read_text(encoding="utf-8") == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".train")] == []


def test_a_full_disk_during_an_import_keeps_nothing_of_it(tmp_path, workspace):
    """SQLite's own 'database or disk is full' (a page limit stands in for the disk)."""
    from cognitivetwin_core.data.importers import import_into

    data = tmp_path / "big.jsonl"
    data.write_text("".join(chat_line(f"c{i}", "word " * 200 + str(i)) for i in range(400)), encoding="utf-8")
    with Workspace.open(workspace) as ws:
        pages = ws._db.execute("PRAGMA page_count").fetchone()[0]
        ws._db.execute(f"PRAGMA max_page_count={pages + 20}")
        with pytest.raises(CognitiveTwinError, match="disk is full"):
            import_into(ws, data)
        ws._db.execute("PRAGMA max_page_count=1073741823")
        assert ws.count_conversations() == 2


def test_a_disk_error_the_commands_did_not_expect_is_still_one_sentence(workspace, monkeypatch, capsys):
    def failing(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", "/data/disk")

    monkeypatch.setattr("cognitivetwin_core.data.workspace.Workspace.stats", failing)
    assert main(["data", "stats", "--workspace", str(workspace)]) != 0
    err = capsys.readouterr().err
    assert "/data/disk" in err and "input/output error" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_phase2_output_in_a_read_only_place_or_below_a_file(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    data = tmp_path / "d.jsonl"
    data.write_text(chat_line("a") + chat_line("b", "other?"), encoding="utf-8")
    args = ("phase2", "train", "--data-file", str(data), "--output-dir")
    refused(cli(*args, str(a_file / "run")), "notes.txt")
    refused(cli(*args, "/sys/cognitivetwin-run"), "/sys/cognitivetwin-run")
    assert a_file.read_text(encoding="utf-8") == "x"


# ----- unbounded records ---------------------------------------------------------------------------


def test_an_oversized_record_in_a_zip_is_skipped_with_bounded_reads(tmp_path, workspace, monkeypatch):
    from cognitivetwin_core.data.importers import import_into, json_stream

    monkeypatch.setattr(json_stream, "MAX_RECORD_BYTES", 1 << 20)
    reads = []
    original_read = zipfile.ZipExtFile.read

    def counting_read(self, n=-1):
        data = original_read(self, n)
        reads.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "conversations.json",
            json.dumps([chatgpt_record("huge", text="x" * (12 << 20)), chatgpt_record("small")]),
        )
    with Workspace.open(workspace) as ws:
        report = import_into(ws, path)
    assert report.conversations_accepted == 1 and "larger than 1 MiB" in report.rejected[0].reason
    assert max(reads) <= 4 << 20  # the window never held the whole record


def test_an_oversized_jsonl_line_is_skipped(tmp_path, workspace, monkeypatch):
    from cognitivetwin_core.data.importers import import_into, json_stream

    monkeypatch.setattr(json_stream, "MAX_RECORD_BYTES", 1 << 20)
    path = tmp_path / "a.jsonl"
    path.write_text(chat_line("big", "y" * (3 << 20)) + chat_line("small"), encoding="utf-8")
    with Workspace.open(workspace) as ws:
        report = import_into(ws, path)
    assert report.conversations_accepted == 1
    assert report.rejected[0].line == 1 and "longer than 1 MiB" in report.rejected[0].reason


def test_a_zip_bomb_member_is_not_read(tmp_path, workspace, monkeypatch):
    from cognitivetwin_core.data.importers import chatgpt_export, import_into

    monkeypatch.setattr(chatgpt_export, "_RATIO_FROM", 1 << 20)
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations.json", json.dumps([chatgpt_record(text=" " * (8 << 20))]))
    with Workspace.open(workspace) as ws:
        report = import_into(ws, path)
    assert report.conversations_accepted == 0 and "zip bomb" in report.rejected[0].reason


# ----- split and partial imports ---------------------------------------------------------------


def _trajectory_line(conversation: str, messages: list[tuple[str, str]]) -> str:
    trajectory = {"coordinates": [0.1, 0.2, 0.3, 0.4, 0.5], "phase_id": 1, "turn_index": len(messages) - 1}
    return (
        json.dumps(
            {
                "conversation_id": conversation,
                "messages": [{"role": r, "content": c} for r, c in messages],
                "trajectory": trajectory,
            }
        )
        + "\n"
    )


def test_trajectory_lines_of_one_conversation_far_apart_are_one_conversation(tmp_path, workspace):
    a = [("user", "a1?"), ("assistant", "a2."), ("user", "a3?")]
    b = [("user", "b1?"), ("assistant", "b2.")]
    lines = [
        _trajectory_line("conv-A", a[:1]),
        _trajectory_line("conv-B", b[:1]),
        _trajectory_line("conv-A", a[:2]),
        _trajectory_line("conv-B", b[:2]),
        _trajectory_line("conv-A", a[:3]),
    ]
    path = tmp_path / "trajectory.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    assert import_(path, workspace).returncode == 0
    with Workspace.open(workspace, read_only=True) as ws:
        ids = sorted(summary.id for summary in ws.list_conversations(0, 10))
        assert ids == ["conv-A", "conv-B", "keep0", "keep1"]
        assert [m.content for m in ws.get_conversation("conv-A").messages] == ["a1?", "a2.", "a3?"]


def test_every_export_in_a_zip_is_read(tmp_path, workspace):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("2024/conversations.json", json.dumps([chatgpt_record("old", text="first")]))
        archive.writestr("2025/conversations.json", json.dumps([chatgpt_record("new", text="second")]))
    result = import_(path, workspace)
    assert result.returncode == 0 and "2 conversations" in result.stdout.decode()


# ----- smaller ones ------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "   \n\n\t\n", "\ufeff\n"])
def test_an_empty_jsonl_is_an_error_and_records_no_import(tmp_path, workspace, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    refused(import_(path, workspace), str(path), "empty")
    assert stored(workspace) == (2, 1)


def test_escape_sequences_never_reach_the_terminal(tmp_path, workspace):
    path = tmp_path / "esc.jsonl"
    record = {
        "id": "e1\x1b[8m",
        "title": "\x1b]0;owned\x07\x1b[2J\u202eevil",
        "messages": [
            {"role": "user", "content": "\x1b[31mred\x9b1m\ttab\nline"},
            {"role": "assistant", "content": "ok"},
        ],
    }
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert import_(path, workspace).returncode == 0
    listing = cli("data", "list", "--workspace", str(workspace)).stdout.decode()
    shown = cli("data", "show", "e1\x1b[8m", "--workspace", str(workspace)).stdout.decode()
    as_json = cli("data", "show", "e1\x1b[8m", "--json", "--workspace", str(workspace)).stdout.decode()
    for text in (listing, shown, as_json):
        assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b]0;owned" in listing and "\\x1b[31mred" in shown and "\ttab\nline" in shown
    assert json.loads(as_json)["messages"][0]["content"] == "\x1b[31mred\x9b1m\ttab\nline"


def test_a_mistyped_workspace_is_not_created_by_reading(tmp_path):
    typo = tmp_path / "wokspace"
    refused(cli("data", "stats", "--workspace", str(typo)), str(typo), "no workspace")
    refused(cli("phase1", "--list", "--workspace", str(typo)), str(typo), "no workspace")
    # Listing the speakers reads; naming the person writes, but only into a workspace that exists.
    refused(cli("data", "speakers", "--workspace", str(typo)), str(typo), "no workspace")
    refused(cli("data", "speakers", "--me", "user", "--workspace", str(typo)), str(typo), "no workspace")
    assert not typo.exists()


@pytest.mark.slow
def test_damaged_pages_in_a_real_workspace_are_a_sentence_for_every_command(tmp_path):
    workspace = tmp_path / "ws"
    with Workspace.open(workspace) as ws:
        ws.add_conversations(
            Conversation(f"c{i}", "test", [Message("user", f"question {i} " * 40), Message("assistant", "ok " * 40)])
            for i in range(300)
        )
    database = workspace / DB_NAME
    damaged = bytearray(database.read_bytes())
    page = 4096
    assert len(damaged) > 20 * page
    for number in range(3, len(damaged) // page, 3):  # the header page and the schema stay whole
        damaged[number * page + 100 : number * page + 900] = bytes(range(256)) * 3 + bytes(32)
    database.write_bytes(bytes(damaged))
    data = tmp_path / "a.jsonl"
    data.write_text(chat_line("a"), encoding="utf-8")
    for command in (["stats"], ["list"], ["speakers"], ["privacy"]):
        refused(cli("data", *command, "--workspace", str(workspace)), str(database), "damaged")
    refused(import_(data, workspace), str(database), "damaged")
    assert database.read_bytes() == bytes(damaged)


@pytest.fixture()
def refusing_server():
    """A loopback service that refuses every key at once (401, which no client retries)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def _refuse(self):
            body = json.dumps({"error": {"message": "Invalid API key", "type": "invalid_request_error"}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _refuse

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_refused_phase1_start_leaves_no_export(tmp_path, workspace, refusing_server):
    env = {"TOGETHER_API_KEY": "tgp_test_key_0123456789abcdefghij", "TOGETHER_BASE_URL": f"{refusing_server}/v1"}
    exports = workspace / "exports"
    # No terminal to confirm the price: refused before exporting.
    refused(cli("phase1", "--workspace", str(workspace), env=env), "--yes")
    # Confirmed, but the service refuses the key: the export made for it goes too.
    result = cli("phase1", "--workspace", str(workspace), "--yes", "--poll-interval", "0", env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr.decode()
    assert not exports.exists() or list(exports.iterdir()) == []


@pytest.mark.slow
def test_the_readme_prepare_data_command_parses(tmp_path, refusing_server):
    result = cli(
        "phase2",
        "--prepare-data",
        "--workspace",
        str(tmp_path / "ws"),
        "--url",
        refusing_server,
        env={"SUPABASE_KEY": "test-key-0123456789"},
    )
    sentence = refused(result)  # the options parsed; the (fake) service refused the key
    assert "usage:" not in sentence and "Supabase" in sentence


def test_the_seed_supabase_service_key_is_honoured(monkeypatch):
    from cognitivetwin_core.cli.data_import_cmd import supabase_credentials

    monkeypatch.delenv("SUPABASE_KEY", raising=False)
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", "service-key-0123456789")
    assert supabase_credentials() == ("http://127.0.0.1:9", "service-key-0123456789")
