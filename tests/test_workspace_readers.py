"""Readers are never blocked by a writer; a mistyped workspace is not created."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.workspace import DB_NAME, Workspace
from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parent.parent

# A second process that takes the workspace's write lock (as an import does) and holds it
# until its stdin closes; it says "locked" once it holds it.
_HOLDER = r"""
import json, os, sqlite3, sys
path = sys.argv[1]
db = sqlite3.connect(os.path.join(path, "workspace.sqlite3"), isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE conversations SET title = title")
with open(os.path.join(path, ".writer.json"), "w") as note:
    json.dump({"pid": os.getpid(), "what": "an import of big.jsonl", "since": "07:00"}, note)
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


@pytest.fixture()
def workspace_dir(tmp_path) -> Path:
    path = tmp_path / "ws"
    with Workspace.open(path) as workspace:
        workspace.add_conversations(
            [
                Conversation(f"c{i}", "test", [Message("user", f"question {i}?"), Message("assistant", f"answer {i}.")])
                for i in range(5)
            ]
        )
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cognitivetwin_core", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=WORK_TIMEOUT_S,
    )


@pytest.fixture()
def held_lock(workspace_dir):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(workspace_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    yield holder
    holder.stdin.close()
    holder.wait(timeout=WORK_TIMEOUT_S)


@pytest.mark.slow
def test_read_commands_do_not_wait_for_a_writer(workspace_dir, held_lock, tmp_path):
    # The lock is held until every reader has returned: a reader that waited for it would give
    # up after the workspace's lock wait with an error, or hang until WORK_TIMEOUT_S; either fails.
    listing = _cli("data", "list", "--workspace", str(workspace_dir))
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("5 conversations")
    assert _cli("data", "stats", "--workspace", str(workspace_dir)).returncode == 0
    shown = _cli("data", "show", "c1", "--workspace", str(workspace_dir))
    assert shown.returncode == 0 and "answer 1." in shown.stdout
    out = tmp_path / "t.jsonl"
    exported = _cli("data", "export", "--format", "trajectory", "--out", str(out), "--workspace", str(workspace_dir))
    assert exported.returncode == 0, exported.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 10


def test_a_needed_update_under_a_writer_is_refused_saying_who_writes(workspace_dir):
    with sqlite3.connect(workspace_dir / DB_NAME) as db:  # as written by an older version
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
        db.execute("CREATE TABLE IF NOT EXISTS marker(x)")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(workspace_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = _cli("data", "list", "--workspace", str(workspace_dir))
    finally:
        holder.stdin.close()
        holder.wait(timeout=WORK_TIMEOUT_S)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "one-time update" in result.stderr and f"process {holder.pid}" in result.stderr
    assert "big.jsonl" in result.stderr


@pytest.mark.slow
def test_read_commands_refuse_a_missing_workspace_and_create_nothing(tmp_path):
    missing = tmp_path / "typo-workspace"
    for command in (["list"], ["stats"], ["show", "x"], ["export", "--format", "trajectory", "--out", "o.jsonl"]):
        result = _cli("data", *command, "--workspace", str(missing))
        assert result.returncode == 2, result.stderr
        assert str(missing) in result.stderr and "Traceback" not in result.stderr
        assert not missing.exists()


def test_the_writer_note_names_the_import_and_goes_away(workspace_dir):
    seen = []
    with Workspace.open(workspace_dir) as workspace:

        def conversations():
            seen.append(json.loads((workspace_dir / ".writer.json").read_text(encoding="utf-8")))
            yield Conversation("n1", "test", [Message("user", "new one")])

        workspace.add_conversations(conversations(), source_label="x", location="/data/big.jsonl")
        assert seen and seen[0]["pid"] == os.getpid() and "big.jsonl" in seen[0]["what"]
        assert not (workspace_dir / ".writer.json").exists()
        assert workspace.lock_holder() == "another program"


def test_a_writer_that_must_wait_says_for_whom_then_goes_on(workspace_dir, tmp_path):
    data = tmp_path / "more.jsonl"
    data.write_text(
        json.dumps(
            {"id": "m1", "messages": [{"role": "user", "content": "more?"}, {"role": "assistant", "content": "yes"}]}
        )
        + "\n",
        encoding="utf-8",
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(workspace_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    importer = subprocess.Popen(
        [sys.executable, "-m", "cognitivetwin_core", "data", "import", str(data), "--workspace", str(workspace_dir)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        waiting = importer.stderr.readline()
        assert waiting.startswith("Waiting: ") and f"process {holder.pid}" in waiting and "big.jsonl" in waiting
    finally:
        holder.stdin.close()
        holder.wait(timeout=WORK_TIMEOUT_S)
    out, err = importer.communicate(timeout=WORK_TIMEOUT_S)
    assert importer.returncode == 0, err
    assert "1 conversations" in out
