"""A Telegram export with one message nested 100,000 deep (a family of test_hostile_inputs.py):
that message is one rejected record and every other message is stored, as the JSONL and
ShareGPT readers do with such records."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parent.parent


def _message(number: int, sender: str, text: str) -> str:
    return json.dumps(
        {"id": number, "type": "message", "date": f"2024-02-01T10:{number:02d}:00", "from": sender, "text": text}
    )


@pytest.mark.parametrize("where", ["text", "record"])
def test_a_message_nested_too_deeply_is_skipped_and_the_others_are_stored(tmp_path, where):
    deep = "[" * 100_000 + "]" * 100_000
    if where == "text":
        bad = '{"id": 3, "type": "message", "date": "2024-02-01T10:03:00", "from": "Lea", "text": ' + deep + "}"
    else:
        bad = deep
    messages = [_message(1, "Sam", "are you coming?"), _message(2, "Lea", "yes, at six"), bad]
    messages += [_message(4, "Sam", "great, see you"), _message(5, "Lea", "bring the map")]
    export = tmp_path / "result.json"
    export.write_text(
        '{"name": "Lea", "type": "personal_chat", "id": 7, "messages": [' + ",\n".join(messages) + "]}",
        encoding="utf-8",
    )
    workspace = tmp_path / "ws"
    result = subprocess.run(
        [sys.executable, "-m", "cognitivetwin_core", "data", "import", str(export), "--workspace", str(workspace)]
        + ["--me", "Sam", "--quiet"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "COGNITIVETWIN_IMPORT_WORKERS": "0"},
        capture_output=True,
        timeout=WORK_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0 and "Traceback" not in err and "RecursionError" not in err, err[-2000:]
    assert "nested too deeply" in out + err, out
    with sqlite3.connect(workspace / "workspace.sqlite3") as db:
        texts = {row[0] for row in db.execute("SELECT content FROM messages")}
    assert {"are you coming?", "yes, at six", "great, see you", "bring the map"} <= texts
