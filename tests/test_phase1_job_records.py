"""Phase 1 job records: the workspace's stored JSON read into `JobRecord`s and back, for
records of this version, of earlier ones (missing keys) and of later ones (unknown keys)."""

from __future__ import annotations

import json

import pytest

from cognitivetwin_core.cli import main
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.phase1.jobs import JobRecord, read_job, read_jobs, unfinished_jobs

# A Together job as `TogetherJobManager` stores it (launch, adopt, poll, download), plus the
# keys the workspace adds.
TOGETHER_RECORD = {
    "job_id": "ft-123",
    "backend": "together",
    "status": "completed",
    "base_model": "llama-3.2-3b",
    "model_id": "meta-llama/Llama-3.2-3B-Instruct",
    "suffix": "my-twin",
    "training_file": "file-1",
    "validation_file": None,
    "data_path": "/data/phase1.jsonl",
    "data_sha256": "ab" * 32,
    "settings": {"epochs": 3, "lora_r": 16, "target_modules": None},
    "estimate": {"price": 1.25, "tokens": 40000, "note": ""},
    "intent_time": 1767225600.5,
    "intent_id": "intent-9",
    "created_remote": "2026-01-01T00:00:00Z",
    "events": [{"type": "training_start", "message": "started", "created_at": "2026-01-01T00:00:05Z"}],
    "events_seen": 1,
    "step": 30,
    "total_steps": 30,
    "epochs_completed": 3,
    "eta_seconds": None,
    "step_samples": [[1767225605.0, 0], [1767225700.0, 30]],
    "output_name": "acct/Llama-3.2-3B-my-twin",
    "duplicates": ["ft-124"],
    "adapter_id": "together-ft-123",
    "adapter_path": "/ws/adapters/together-ft-123",
    "updated": "2026-01-01T00:10:00+00:00",
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:10:00+00:00",
}

# A local run as `LocalLoraJobs` stores it.
LOCAL_RECORD = {
    "job_id": "local-abc",
    "backend": "local",
    "status": "completed",
    "base_model": "smollm2-135m",
    "model_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "suffix": None,
    "data_path": "/data/phase1.jsonl",
    "data_sha256": "cd" * 32,
    "settings": {"epochs": 1, "max_steps": 4},
    "work_dir": "/ws/runs/phase1-local-abc",
    "events": [],
    "step": 4,
    "total_steps": 4,
    "epochs_completed": 1,
    "eta_seconds": None,
    "owner_pid": 4242,
    "owner_started": 1767225600.25,
    "last_loss": 2.5,
    "adapter_id": "local-abc",
    "adapter_path": "/ws/adapters/local-abc",
    "device": "cpu",
    "precision": "fp32",
    "trained_tokens": 1234,
    "tokens_per_second": 99.5,
    "updated": "2026-01-01T00:01:00+00:00",
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:01:00+00:00",
}


@pytest.mark.parametrize("stored", [TOGETHER_RECORD, LOCAL_RECORD], ids=["together", "local"])
def test_a_record_of_this_version_round_trips_exactly(stored):
    record = JobRecord.from_dict(stored)
    assert record.extra == {}  # every key a backend writes is a field
    assert record.to_dict() == stored
    assert JobRecord.from_dict(record.to_dict()) == record


def test_typed_fields_read_as_stored():
    together = JobRecord.from_dict(TOGETHER_RECORD)
    assert (together.backend, together.status, together.step, together.total_steps) == ("together", "completed", 30, 30)
    assert together.duplicates == ["ft-124"] and together.estimate["price"] == 1.25
    assert together.terminal and not together.failed and not together.is_intent
    local = JobRecord.from_dict(LOCAL_RECORD)
    assert local.tokens_per_second == 99.5 and local.device == "cpu" and local.owner_pid == 4242


def test_an_old_record_missing_fields_gets_defaults_and_loses_nothing():
    # What an early version stored for a job it had only just created.
    old = {"job_id": "ft-old", "backend": "together", "status": "running", "created_at": "2025-06-01T10:00:00"}
    record = JobRecord.from_dict(old)
    assert record.events == [] and record.duplicates == [] and record.step_samples == []
    assert record.settings == {} and record.estimate == {} and record.events_seen == 0
    assert record.error is None and record.adapter_path is None and record.step is None
    assert not record.terminal and record.extra == {}
    assert record.to_dict() == old  # no defaults added for keys it never had
    assert JobRecord.from_dict(record.to_dict()) == record
    # Not even a job id: an empty id rather than a crash (the workspace always adds one).
    assert JobRecord.from_dict({}).job_id == ""


def test_unknown_keys_are_kept_in_extra_and_written_back():
    newer = {
        **LOCAL_RECORD,
        "gpu_memory_peak": 1.5e9,
        "notes": {"why": "a later version's field"},
        "extra": "a stored key that happens to be called extra",
    }
    record = JobRecord.from_dict(newer)
    assert record.extra == {
        "gpu_memory_peak": 1.5e9,
        "notes": {"why": "a later version's field"},
        "extra": "a stored key that happens to be called extra",
    }
    assert record.to_dict() == newer
    assert JobRecord.from_dict(record.to_dict()) == record


def test_values_of_the_wrong_shape_fall_back_instead_of_failing():
    record = JobRecord.from_dict(
        {"job_id": "ft-x", "events": None, "duplicates": "ft-y", "settings": [1], "estimate": None, "events_seen": "7"}
    )
    assert record.events == [] and record.duplicates == [] and record.settings == {} and record.estimate == {}
    assert record.events_seen == 7
    assert JobRecord.from_dict({"job_id": "ft-x", "events_seen": "many"}).events_seen == 0


def test_a_record_made_in_code_writes_only_what_was_set():
    record = JobRecord("local-1", backend="local", status="running", step=None)
    assert record.to_dict() == {"job_id": "local-1", "backend": "local", "status": "running"}
    assert JobRecord.from_dict(record.to_dict()) == record
    assert JobRecord("ft-9", duplicates=["ft-10"]).to_dict() == {"job_id": "ft-9", "duplicates": ["ft-10"]}


def test_to_dict_hands_out_copies():
    record = JobRecord.from_dict(TOGETHER_RECORD)
    out = record.to_dict()
    out["events"].append({"type": "x"})
    out["settings"]["epochs"] = 99
    assert len(record.events) == 1 and record.settings["epochs"] == 3


def test_unfinished_jobs_takes_records():
    records = [JobRecord.from_dict(d) for d in (TOGETHER_RECORD, LOCAL_RECORD)] + [
        JobRecord("ft-run", backend="together", status="running"),
        JobRecord("intent-1", backend="together", status="creating"),
        JobRecord("ft-stopped", backend="together", status="interrupted"),
    ]
    assert unfinished_jobs(records, "together") == ["ft-run"]
    assert unfinished_jobs(records, "local") == []


def test_the_workspace_reads_records_and_keeps_its_stored_format(tmp_path):
    with Workspace.open(tmp_path / "ws") as ws:
        ws.upsert_phase1_job("ft-old", {"backend": "together", "status": "running"})
        ws.upsert_phase1_job("local-new", {"backend": "local", "status": "completed", "future_key": [1, 2]})
        stored_before = ws.phase1_jobs()

        records = read_jobs(ws)
        assert all(isinstance(r, JobRecord) for r in records)
        assert [r.job_id for r in records] == ["ft-old", "local-new"]
        assert [r.job_id for r in read_jobs(ws, "local")] == ["local-new"]
        assert read_job(ws, "local-new").extra == {"future_key": [1, 2]}
        assert read_job(ws, "missing") is None

        # Reading changes nothing stored, and gives back every stored key.
        assert ws.phase1_jobs() == stored_before
        assert [r.to_dict() for r in records] == stored_before
        row = ws._query("SELECT fields FROM phase1_jobs WHERE job_id=?", ("ft-old",))
        assert json.loads(row[0][0]) == {"backend": "together", "status": "running"}  # the JSON as written


def test_backends_list_their_jobs_as_records(tmp_path):
    from cognitivetwin_core.phase1.local_jobs import LocalLoraJobs
    from cognitivetwin_core.phase1.together_jobs import TogetherJobManager

    with Workspace.open(tmp_path / "ws") as ws:
        ws.upsert_phase1_job("ft-1", {"backend": "together", "status": "running"})
        ws.upsert_phase1_job("intent-2", {"backend": "together", "status": "creating"})
        ws.upsert_phase1_job("ft-3", {"backend": "together", "status": "completed"})
        ws.upsert_phase1_job("local-4", {"backend": "local", "status": "completed", "adapter_path": "/a"})

        together = TogetherJobManager(ws, api_key="test-key-not-used", base_url="http://127.0.0.1:9", reconcile=False)
        jobs = together.jobs()
        assert all(isinstance(r, JobRecord) for r in jobs)
        assert [r.job_id for r in jobs] == ["ft-1", "intent-2", "ft-3"]
        assert together.unfinished_jobs() == ["ft-1"]

        local = LocalLoraJobs(ws)
        assert [(type(r), r.job_id, r.adapter_path) for r in local.jobs()] == [(JobRecord, "local-4", "/a")]
        assert local.unfinished_jobs() == []


def test_the_cli_lists_old_and_newer_records(tmp_path, capsys):
    with Workspace.open(tmp_path / "ws") as ws:
        ws.upsert_phase1_job("ft-old", {"status": "running"})  # no backend: an early record
        ws.upsert_phase1_job("local-new", {**LOCAL_RECORD, "future_key": 1})
        ws.upsert_phase1_job("ft-dup", {"backend": "together", "status": "pending", "duplicates": ["ft-dup2"]})
    assert main(["phase1", "--workspace", str(tmp_path / "ws"), "--list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.startswith("ft-old") and "running" in line for line in lines)
    assert any(line.startswith("local-new") and "/ws/adapters/local-abc" in line for line in lines)
    assert "duplicates on Together: ft-dup2" in out
