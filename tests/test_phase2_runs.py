"""Phase 2 runs read from real run folders: run.json lineage merged with the workspace's
records, metrics.json curves, fresh output folders."""

from __future__ import annotations

import json
import time

from cognitivetwin_core.phase2.runs import (
    RunRecord,
    epoch_curves,
    feature_cache_dir,
    list_runs,
    new_run_dir,
)


def _write_run(folder, run_id, started_at, **extra):
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(
        json.dumps({"run_id": run_id, "started_at": started_at, **extra}), encoding="utf-8"
    )
    return folder


METRICS = {
    "epochs": [
        {"epoch": 1, "train": {"total": 2.0}, "validation": {"total": 2.5}, "metrics": {"pattern_macro_f1": 0.3}},
        {"epoch": 2, "train": {"total": 1.5}, "validation": {}, "metrics": {"pattern_macro_f1": 0.4}},
        {"train": {"total": 9.9}},  # no epoch number: not a point
    ]
}


def test_list_runs_of_a_folder_newest_first_with_metrics(tmp_path):
    old = _write_run(tmp_path / "a", "old", "2026-01-01T10:00:00", outcome="completed")
    new = _write_run(tmp_path / "b", "new", "2026-02-01T10:00:00", outcome="stopped")
    (new / "metrics.json").write_text(json.dumps(METRICS), encoding="utf-8")
    (tmp_path / "junk").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json", encoding="utf-8")

    runs = list_runs(tmp_path)

    assert [r.run_id for r in runs] == ["new", "old"]
    assert runs[0].outcome == "stopped" and runs[0].exists
    assert runs[0].metrics == METRICS and runs[1].metrics is None
    assert runs[1].output_dir == str(old)


def test_list_runs_of_a_workspace_merges_records_folder_wins(tmp_path):
    from cognitivetwin_core.data.workspace import Workspace

    workspace = Workspace.open(tmp_path / "ws")
    folder = _write_run(workspace.runs_dir / "r1", "r1", "2026-03-01T00:00:00", outcome="completed")
    workspace.upsert_phase2_run("r1", {"output_dir": str(folder), "outcome": "running", "note": "from the app"})
    elsewhere = _write_run(tmp_path / "outside", "r2", "2026-03-02T00:00:00")
    workspace.upsert_phase2_run("r2", {"output_dir": str(elsewhere)})
    workspace.upsert_phase2_run("gone", {"output_dir": str(tmp_path / "deleted"), "started_at": "2026-01-01"})

    by_id = {r.run_id: r for r in list_runs(workspace)}

    assert by_id["r1"].outcome == "completed"  # run.json wins over the stored record
    assert by_id["r1"].fields["note"] == "from the app"
    assert by_id["r2"].exists and by_id["r2"].output_dir == str(elsewhere)
    assert not by_id["gone"].exists


def test_record_round_trip_and_load(tmp_path):
    folder = _write_run(tmp_path / "r", "r", "2026-01-01", parameters={"epochs": 3}, outcome="failed")
    record = RunRecord.load(folder)
    assert record.parameters == {"epochs": 3}
    again = RunRecord.from_dict(record.to_dict())
    assert again == record
    assert RunRecord.load(tmp_path / "missing") is None


def test_epoch_curves_skip_missing_values():
    curves = epoch_curves(METRICS)
    assert curves["train loss"] == ([1, 2], [2.0, 1.5])
    assert curves["validation loss"] == ([1], [2.5])
    assert curves["pattern_macro_f1"] == ([1, 2], [0.3, 0.4])
    assert "planning_cosine" not in curves
    assert epoch_curves(None) == {}


def test_new_run_dir_never_reuses_a_folder(tmp_path):
    now = time.mktime((2026, 5, 4, 3, 2, 1, 0, 0, -1))
    first = new_run_dir(tmp_path, now)
    assert first.name == "phase2-20260504-030201" and not first.exists()
    first.mkdir()
    second = new_run_dir(tmp_path, now)
    assert second.name == "phase2-20260504-030201-2"


def test_feature_cache_dir_only_when_it_exists(tmp_path):
    cache = tmp_path / "cache" / "abc"
    folder = _write_run(tmp_path / "r", "r", "", feature_cache={"path": str(cache)})
    assert feature_cache_dir(folder) is None
    (tmp_path / "cache").mkdir()
    assert feature_cache_dir(folder) == tmp_path / "cache"


def test_components_config_read_without_torch(tmp_path):
    import subprocess
    import sys

    import pytest

    from cognitivetwin_core.errors import InputError
    from cognitivetwin_core.phase2.components_folder import FORMAT_NAME, holds_components, read_components_config

    with pytest.raises(InputError, match="holds no Phase 2 model"):
        read_components_config(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").write_text("{broken", encoding="utf-8")
    assert holds_components(tmp_path)
    with pytest.raises(InputError, match="cannot be read"):
        read_components_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "other"}), encoding="utf-8")
    with pytest.raises(InputError, match="not a CognitiveTwin Phase 2 model config"):
        read_components_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": FORMAT_NAME, "base_model": "b"}), encoding="utf-8")
    assert read_components_config(tmp_path)["base_model"] == "b"

    # The app lists runs on its GUI thread: these modules must not pull torch in.
    probe = (
        "import sys, cognitivetwin_core.phase2.components_folder, cognitivetwin_core.phase2.runs, "
        "cognitivetwin_core.playground.session; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
