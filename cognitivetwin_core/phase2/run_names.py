"""Readable names for Phase 2 runs: base, data and date by default, editable by the person.

    default_run_name("smollm2-135m", {"kind": "file", "path": ".../demo/conversations.jsonl",
                     "conversations": 44}, when)   -> "SmolLM2 135M · demo (44 conv.) · 3 Dec 14:05"
    rename_run(run_dir, "First try")   # run.json's "name", written atomically

The name lives in run.json (`"name"`); the run's id and folder never change.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cognitivetwin_core.errors import InputError

MAX_NAME_LENGTH = 120


def base_label(base_model: str | None) -> str:
    """The base's short display name ("SmolLM2 135M"), or its folder's name."""
    from cognitivetwin_core.models.catalog import short_label

    return short_label(base_model)


def data_label(data: dict | None) -> str:
    """ "demo (44 conv.)", "<workspace folder> (12 conv.)", "<file name> (3 conv.)"."""
    data = data or {}
    path = data.get("path")
    if data.get("kind") == "file" and path:
        from cognitivetwin_core.data.importers.demo import demo_dataset_path

        same = Path(path).resolve() == demo_dataset_path().resolve()
        label = "demo" if same else Path(path).stem
    elif data.get("kind") == "workspace" and path:
        label = Path(path).name
    else:
        label = "data"
    count = data.get("conversations")
    return f"{label} ({count} conv.)" if count is not None else label


def date_label(when: datetime) -> str:
    return f"{when.day} {when.strftime('%b %H:%M')}"


def default_run_name(base_model: str | None, data: dict | None, when: datetime | None = None) -> str:
    when = when or datetime.now().astimezone()
    return f"{base_label(base_model)} · {data_label(data)} · {date_label(when)}"


def run_name(record: dict) -> str:
    """The name to show for a run.json record (older runs have none: made from what they hold)."""
    if record.get("name"):
        return str(record["name"])
    when = None
    started = record.get("started_at")
    if started:
        try:
            when = datetime.fromisoformat(started).astimezone()
        except ValueError:
            when = None
    if when is None:
        return str(record.get("run_id") or "run")
    return default_run_name(record.get("base_model"), record.get("data"), when)


def rename_run(run_dir: str | Path, name: str, workspace=None) -> dict:
    """Give the run in `run_dir` a new name (run.json, and the workspace's record if given)."""
    name = " ".join(str(name).split())
    if not name:
        raise InputError("A run's name cannot be empty: type a few words.")
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(f"A run's name can have at most {MAX_NAME_LENGTH} characters (this one has {len(name)}).")
    from cognitivetwin_core.phase2.runs import RUN_FILE, read_run_file, write_run_file

    path = Path(run_dir) / RUN_FILE
    record = read_run_file(run_dir)
    if record is None and not path.is_file():
        raise InputError(f"{run_dir} holds no Phase 2 run (no {RUN_FILE}): choose a run's folder.")
    if record is None:
        raise InputError(f"{path} is not a readable JSON object; the run cannot be renamed.")
    record["name"] = name
    write_run_file(run_dir, record)
    if workspace is not None and record.get("run_id"):
        workspace.upsert_phase2_run(record["run_id"], {"name": name})
    return record
