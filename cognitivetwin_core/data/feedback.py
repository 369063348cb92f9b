"""Feedback on the twin's replies: thumbs up, thumbs down, or the person's own wording.

    record = add_feedback(workspace, adapter_dir, context, reply, verdict="edit", edit="…")
    list_feedback(workspace)                     # newest last
    undo_feedback(workspace, record.id)          # removes it (nothing else refers to it)
    export_feedback(workspace, "dpo", path)      # prompt / chosen / rejected JSONL
    export_feedback(workspace, "kto", path)      # prompt / completion / label JSONL

Each record keeps the conversation the reply answered (`context`, chat messages), the twin's
reply, the verdict, the edit, the adapter folder it judged and the time, in the workspace's
`feedback` table. A Teach run (phase1/teach.py) turns them into preference data: an edit is a
pair (the edit preferred to the reply), a thumb is a single example with its label. The texts
are never held-out evaluation data (`feedback_texts`). See docs/teaching-and-memory.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.atomic_files import write_text_atomically
from cognitivetwin_core.errors import InputError

GOOD, BAD, EDIT = "good", "bad", "edit"
VERDICTS = (GOOD, BAD, EDIT)
FORMATS = ("dpo", "kto")


@dataclass(frozen=True)
class Feedback:
    id: int
    adapter: str
    context: list[dict]  # the chat messages the reply answered, ending with the user's turn
    reply: str
    verdict: str  # GOOD, BAD or EDIT
    edit: str | None
    created_at: str

    @property
    def prompt(self) -> list[dict]:
        return self.context


def adapter_key(adapter_dir: str | Path) -> str:
    """How a record names its adapter: the folder's resolved path."""
    return str(Path(adapter_dir).expanduser().resolve())


def context_messages(context: str | list[dict]) -> list[dict]:
    """Chat messages from a context: a text is the user's one message."""
    if isinstance(context, str):
        messages = [{"role": "user", "content": context}]
    else:
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in context]
    if not messages or not any(m["content"].strip() for m in messages):
        raise InputError("The feedback has no context: give the message the twin answered (--context).")
    return messages


def add_feedback(
    workspace,
    adapter_dir: str | Path,
    context: str | list[dict],
    reply: str,
    *,
    verdict: str,
    edit: str | None = None,
) -> Feedback:
    """Store one verdict on a reply of the twin in `adapter_dir`."""
    if verdict not in VERDICTS:
        raise InputError(f"Unknown verdict {verdict!r}: use one of {', '.join(VERDICTS)}.")
    if not (reply or "").strip():
        raise InputError("The feedback has no reply: give the twin's reply it judges (--reply).")
    if verdict == EDIT:
        if not (edit or "").strip():
            raise InputError("The edit is empty: write the reply as you would say it (--edit TEXT).")
        if edit.strip() == reply.strip():
            raise InputError("The edit is the same as the twin's reply: change it, or give a thumbs up (--good).")
    else:
        edit = None
    messages = context_messages(context)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    key = adapter_key(adapter_dir)
    with workspace._transaction() as db:
        cursor = db.execute(
            "INSERT INTO feedback(adapter, context, reply, verdict, edit, created_at) VALUES(?,?,?,?,?,?)",
            (key, json.dumps(messages, ensure_ascii=False), reply, verdict, edit, created),
        )
        feedback_id = int(cursor.lastrowid)
    return Feedback(feedback_id, key, messages, reply, verdict, edit, created)


def _record(row) -> Feedback:
    feedback_id, adapter, context, reply, verdict, edit, created = row
    return Feedback(int(feedback_id), adapter, json.loads(context), reply, verdict, edit, created)


def list_feedback(workspace, *, adapters: list[str | Path] | None = None) -> list[Feedback]:
    """The stored feedback, oldest first; only on `adapters` (folders) when given."""
    sql = "SELECT id, adapter, context, reply, verdict, edit, created_at FROM feedback"
    params: list[str] = []
    if adapters is not None:
        keys = [adapter_key(a) for a in adapters]
        if not keys:
            return []
        sql += f" WHERE adapter IN ({','.join('?' * len(keys))})"
        params = keys
    return [_record(row) for row in workspace._query(sql + " ORDER BY id", params)]


def undo_feedback(workspace, feedback_id: int) -> Feedback:
    """Remove one record (the one just given, usually); an unknown id is refused in words."""
    rows = workspace._query(
        "SELECT id, adapter, context, reply, verdict, edit, created_at FROM feedback WHERE id=?", (int(feedback_id),)
    )
    if not rows:
        raise InputError(
            f"There is no feedback {feedback_id} in {workspace.path}: `cognitivetwin feedback list` shows them."
        )
    with workspace._transaction() as db:
        db.execute("DELETE FROM feedback WHERE id=?", (int(feedback_id),))
    return _record(rows[0])


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def dpo_rows(records: list[Feedback]) -> list[dict]:
    """(edited ≻ original) pairs in TRL's conversational preference format."""
    return [
        {"prompt": r.context, "chosen": _assistant(r.edit), "rejected": _assistant(r.reply), "feedback_id": r.id}
        for r in records
        if r.verdict == EDIT and r.edit
    ]


def kto_rows(records: list[Feedback]) -> list[dict]:
    """Single examples with a label in TRL's conversational unpaired format: a thumb is its reply
    with its label; an edit is two (the edit desirable, the twin's reply not)."""
    rows = []
    for r in records:
        if r.verdict == EDIT and r.edit:
            rows.append({"prompt": r.context, "completion": _assistant(r.edit), "label": True, "feedback_id": r.id})
            rows.append({"prompt": r.context, "completion": _assistant(r.reply), "label": False, "feedback_id": r.id})
        else:
            rows.append(
                {
                    "prompt": r.context,
                    "completion": _assistant(r.reply),
                    "label": r.verdict == GOOD,
                    "feedback_id": r.id,
                }
            )
    return rows


def export_feedback(workspace, fmt: str, path: str | Path, *, adapters: list[str | Path] | None = None) -> int:
    """Write the feedback as JSONL for preference tuning elsewhere (atomically); the row count."""
    fmt = (fmt or "").lower()
    if fmt not in FORMATS:
        raise InputError(f"Unknown format {fmt!r}: use dpo (pairs from edits) or kto (every verdict, labelled).")
    records = list_feedback(workspace, adapters=adapters)
    rows = dpo_rows(records) if fmt == "dpo" else kto_rows(records)
    if not rows:
        what = "no edited reply (DPO pairs come from edits)" if fmt == "dpo" else "no feedback"
        raise InputError(f"The workspace {workspace.path} has {what}: nothing was written to {path}.")
    write_text_atomically(Path(path), "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows)


def feedback_texts(workspace) -> set[str]:
    """The replies and edits feedback holds, stripped: what a Teach run trains on (the contexts
    are only conditioned on). Held-out evaluation leaves out any conversation containing one."""
    texts: set[str] = set()
    for record in list_feedback(workspace):
        texts.add(record.reply.strip())
        if record.edit:
            texts.add(record.edit.strip())
    texts.discard("")
    return texts
