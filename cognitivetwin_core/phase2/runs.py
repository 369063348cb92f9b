"""Phase 2 runs on disk: each run folder's `run.json` (lineage, outcome, parameters) and
`metrics.json` (per-epoch losses and metrics), read without torch so the app and the CLI
can list, compare and resume runs cheaply. `run.json` is read (`read_run_file`) and written
(`write_run_file`) only through this module, whoever writes it: the trainer, the child's
supervisor recording a crash, a rename.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cognitivetwin_core.atomic_files import write_json_atomically

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
# The per-epoch validation metrics compared against their baselines (same keys as metrics.json).
HEAD_METRIC_KEYS = ("pattern_macro_f1", "planning_cosine", "style_retrieval")


def read_json(path: Path) -> dict | None:
    """A JSON object from `path`, or None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_run_file(run_dir: str | Path) -> dict | None:
    """The run.json of `run_dir`, or None when it is missing, unreadable or not an object."""
    return read_json(Path(run_dir) / RUN_FILE)


def write_run_file(run_dir: str | Path, record: dict, workspace=None) -> None:
    """Write `record` as the run.json of `run_dir` (atomically: an earlier one stays whole if
    this fails) and, given the run's workspace, its record there too."""
    write_json_atomically(Path(run_dir) / RUN_FILE, record, default=str)
    if workspace is not None and record.get("run_id"):
        workspace.upsert_phase2_run(record["run_id"], record)


@dataclass
class RunRecord:
    """One Phase 2 run: its run.json (merged over the workspace's record of it), its folder,
    its metrics.json and whether the folder still exists. `fields` keeps every key as written,
    so nothing the trainer adds later is lost on the way to the app."""

    run_id: str
    output_dir: str | None = None
    metrics: dict | None = None
    exists: bool = False
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str | None:
        return self.fields.get("outcome") or self.fields.get("status")

    @property
    def started_at(self) -> str:
        return self.fields.get("started_at") or self.fields.get("created_at") or ""

    @property
    def parameters(self) -> dict:
        return dict(self.fields.get("parameters") or {})

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        rest = {k: v for k, v in data.items() if k not in ("run_id", "output_dir", "metrics", "exists")}
        return cls(
            run_id=str(data.get("run_id") or ""),
            output_dir=str(data["output_dir"]) if data.get("output_dir") else None,
            metrics=data.get("metrics"),
            exists=bool(data.get("exists", False)),
            fields=rest,
        )

    def to_dict(self) -> dict:
        """The flat dict the app shows (run.json keys plus output_dir, metrics, exists)."""
        return {
            **self.fields,
            "run_id": self.run_id,
            "output_dir": self.output_dir,
            "metrics": self.metrics,
            "exists": self.exists,
        }

    @classmethod
    def load(cls, run_dir: str | Path) -> RunRecord | None:
        """The run in `run_dir`, or None when the folder holds no readable run.json with a run id."""
        folder = Path(run_dir)
        on_disk = read_run_file(folder)
        if not on_disk or not on_disk.get("run_id"):
            return None
        record = cls.from_dict({**on_disk, "output_dir": str(folder)})
        record.metrics = read_json(folder / METRICS_FILE)
        record.exists = folder.is_dir()
        return record


def list_runs(workspace_or_dir) -> list[RunRecord]:
    """Every Phase 2 run, newest first. Given a workspace: its recorded runs merged with the
    run.json in each run's folder (the folder wins) plus any run folder under its runs dir.
    Given a folder: the runs in its sub-folders."""
    runs: dict[str, dict] = {}
    if isinstance(workspace_or_dir, (str, Path)):
        runs_dir = Path(workspace_or_dir)
    else:
        runs_dir = workspace_or_dir.runs_dir
        for record in workspace_or_dir.phase2_runs():
            runs[record["run_id"]] = dict(record)
    folders: set[Path] = set()
    if runs_dir.is_dir():
        folders.update(p for p in runs_dir.iterdir() if (p / RUN_FILE).is_file())
    for record in runs.values():
        if record.get("output_dir"):
            folders.add(Path(record["output_dir"]))
    for folder in folders:
        on_disk = read_run_file(folder)
        if not on_disk or not on_disk.get("run_id"):
            continue
        runs[on_disk["run_id"]] = {**runs.get(on_disk["run_id"], {}), **on_disk, "output_dir": str(folder)}
    records = []
    for data in runs.values():
        folder = Path(data["output_dir"]) if data.get("output_dir") else None
        record = RunRecord.from_dict(data)
        record.metrics = read_json(folder / METRICS_FILE) if folder else None
        record.exists = bool(folder and folder.is_dir())
        records.append(record)
    return sorted(records, key=lambda r: r.started_at, reverse=True)


def epoch_curves(metrics: dict | None, metric_keys=HEAD_METRIC_KEYS) -> dict[str, tuple[list, list]]:
    """Per-epoch curves of a run's metrics.json: {name: (epochs, values)} for "train loss",
    "validation loss" and each of `metric_keys`; epochs without a value are left out."""
    curves: dict[str, tuple[list, list]] = {}
    for entry in (metrics or {}).get("epochs", []):
        epoch = entry.get("epoch")
        if epoch is None:
            continue
        values = {
            "train loss": (entry.get("train") or {}).get("total"),
            "validation loss": (entry.get("validation") or {}).get("total"),
            **{key: (entry.get("metrics") or {}).get(key) for key in metric_keys},
        }
        for name, value in values.items():
            if value is not None:
                xs, ys = curves.setdefault(name, ([], []))
                xs.append(epoch)
                ys.append(value)
    return curves


def new_run_dir(runs_dir: str | Path, now: float | None = None) -> Path:
    """A fresh, not yet existing folder for a run: runs_dir/phase2-YYYYmmdd-HHMMSS[-n]."""
    runs_dir = Path(runs_dir)
    stem = time.strftime("phase2-%Y%m%d-%H%M%S", time.localtime(now))
    candidate, n = runs_dir / stem, 1
    while candidate.exists():
        n += 1
        candidate = runs_dir / f"{stem}-{n}"
    return candidate


def feature_cache_dir(run_dir: str | Path) -> Path | None:
    """The folder of the feature cache the run trained with (from its run.json), if it still exists."""
    entry = ((read_run_file(run_dir) or {}).get("feature_cache") or {}).get("path")
    if entry and Path(entry).parent.is_dir():
        return Path(entry).parent
    return None
