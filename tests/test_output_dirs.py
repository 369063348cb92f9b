"""Output folders: nothing the user did not ask to replace is deleted or replaced (data loss)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from together_server import FakeTogether, make_tiny_lora_adapter

from cognitivetwin_core.cli import main
from cognitivetwin_core.errors import InputError
from cognitivetwin_core.output_dirs import (
    ADAPTER,
    EMPTY,
    FOREIGN,
    MISSING,
    PHASE2_RUN,
    PHASE2_UNTRAINED,
    check_adapter_output,
    check_phase2_output,
    classify,
)
from cognitivetwin_core.paths import resources_dir
from cognitivetwin_core.phase1.jobs import read_chat_jsonl
from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parent.parent


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    (folder / "lineage.json").write_text(json.dumps({"backend": "together", "job_id": "ft-old"}), encoding="utf-8")
    return folder


def test_classify_each_kind(tmp_path):
    assert classify(tmp_path / "new") == MISSING
    (tmp_path / "empty").mkdir()
    assert classify(tmp_path / "empty") == EMPTY
    assert classify(_adapter(tmp_path / "adapter")) == ADAPTER
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"run_id": "r1", "outcome": "failed"}), encoding="utf-8")
    assert classify(run) == PHASE2_UNTRAINED
    (run / "model.safetensors").write_bytes(b"x")
    assert classify(run) == PHASE2_RUN
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    assert classify(foreign) == FOREIGN
    # A lineage.json that is not ours (no JSON object with our key) does not make a folder ours.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "adapter_config.json").write_text("{}", encoding="utf-8")
    (fake / "lineage.json").write_text("[1, 2]", encoding="utf-8")
    assert classify(fake) == FOREIGN


def test_files_and_paths_below_files_are_refused(tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="existing file"):
        check_adapter_output(existing)
    with pytest.raises(InputError, match="is a file"):
        check_phase2_output(existing / "run")
    assert existing.read_text(encoding="utf-8") == "mine"


def test_rules(tmp_path):
    adapter = _adapter(tmp_path / "adapter")
    with pytest.raises(InputError, match="--overwrite"):
        check_adapter_output(adapter)
    assert check_adapter_output(adapter, overwrite=True) == ADAPTER
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a.txt").write_text("x", encoding="utf-8")
    for kwargs in ({}, {"overwrite": True}):
        with pytest.raises(InputError, match="other files"):
            check_adapter_output(foreign, **kwargs)
        with pytest.raises(InputError, match="other files"):
            check_phase2_output(foreign, **kwargs)
    with pytest.raises(InputError, match="no Phase 2 run to resume"):
        check_phase2_output(foreign, resume=True)
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"run_id": "r1"}), encoding="utf-8")
    with pytest.raises(InputError, match="--resume"):
        check_phase2_output(run)
    assert check_phase2_output(run, resume=True) == PHASE2_RUN
    assert check_phase2_output(run, overwrite=True) == PHASE2_RUN


# ----- phase1 --download through the CLI, against the loopback fake ---------------------------


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("od-adapter"))


@pytest.fixture()
def completed_job(adapter_dir, monkeypatch, isolated_user_dirs, tmp_path, capsys):
    conversations = read_chat_jsonl(resources_dir() / "demo" / "conversations.jsonl")[:5]
    data = tmp_path / "phase1.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations), encoding="utf-8")
    with FakeTogether(adapter_dir=adapter_dir) as server:
        monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
        monkeypatch.setenv("TOGETHER_API_KEY", server.api_key)
        ws = str(tmp_path / "ws")
        assert main(["phase1", "--workspace", ws, "--data", str(data), "--yes"]) == 0
        job_id = next(w for w in capsys.readouterr().out.split() if w.startswith("ft-"))
        assert main(["phase1", "--workspace", ws, "--wait-job", job_id, "--poll-interval", "0"]) == 0
        capsys.readouterr()
        yield ws, job_id, server


def _download(ws, job_id, target, *extra) -> int:
    return main(["phase1", "--workspace", ws, "--download", job_id, "--output-dir", str(target), *extra])


def test_download_never_replaces_what_the_user_did_not_ask_to(completed_job, tmp_path, capsys):
    ws, job_id, server = completed_job
    # A folder of the user's own files: refused, untouched, nothing downloaded.
    foreign = tmp_path / "Documents"
    foreign.mkdir()
    (foreign / "thesis.docx").write_bytes(b"years of work")
    (foreign / "sub").mkdir()
    (foreign / "sub" / "notes.txt").write_text("more", encoding="utf-8")
    before = _snapshot(foreign)
    requests_before = len(server.requests)
    assert _download(ws, job_id, foreign) == 2
    err = capsys.readouterr().err
    assert str(foreign) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _snapshot(foreign) == before
    assert not any("/finetune/download" in r[1] for r in server.requests[requests_before:])
    # An existing file: refused, untouched, not moved aside.
    existing = tmp_path / "adapter.bin"
    existing.write_bytes(b"precious")
    assert _download(ws, job_id, existing) == 2
    assert existing.read_bytes() == b"precious"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapter.bin")]
    # Below a file: refused.
    assert _download(ws, job_id, existing / "x") == 2
    assert "is a file" in capsys.readouterr().err
    # An empty folder is fine; then the same folder (now ours) needs --overwrite.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _download(ws, job_id, empty) == 0
    assert (empty / "adapter_config.json").is_file() and (empty / "lineage.json").is_file()
    capsys.readouterr()
    (empty / "my-extra.txt").write_text("kept?", encoding="utf-8")
    assert _download(ws, job_id, empty) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (empty / "my-extra.txt").exists()
    assert _download(ws, job_id, empty, "--overwrite") == 0
    assert (empty / "adapter_config.json").is_file()


# ----- phase2 --output-dir ------------------------------------------------------------------------


def _phase2(tmp_path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "cognitivetwin_core", "phase2", "train", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=WORK_TIMEOUT_S,
    )


@pytest.mark.slow
def test_phase2_refuses_a_foreign_folder_and_a_file(tmp_path):
    foreign = tmp_path / "out"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"mine": true}', encoding="utf-8")
    (foreign / "metrics.json").write_text('{"mine": true}', encoding="utf-8")
    before = _snapshot(foreign)
    result = _phase2(tmp_path, "--data-file", "demo", "--output-dir", str(foreign), "--epochs", "1")
    assert result.returncode == 2, result.stderr
    assert str(foreign) in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _snapshot(foreign) == before
    existing = tmp_path / "file.txt"
    existing.write_text("mine", encoding="utf-8")
    result = _phase2(tmp_path, "--data-file", "demo", "--output-dir", str(existing), "--epochs", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert existing.read_text(encoding="utf-8") == "mine"


@pytest.mark.slow
def test_a_refused_phase2_start_leaves_nothing_and_the_corrected_command_runs_its_checks(tmp_path):
    out = tmp_path / "run"
    result = _phase2(tmp_path, "--data-file", str(tmp_path / "missing.jsonl"), "--output-dir", str(out))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert not out.exists()
    # A start that failed after writing its run.json (nothing trained) does not block the next one.
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"run_id": "x", "outcome": "failed"}), encoding="utf-8")
    assert check_phase2_output(out) == PHASE2_UNTRAINED


@pytest.mark.usefixtures("torch_one_thread")
def test_phase2_overwrite_replaces_only_our_earlier_run(tiny_model_dir, tmp_path, demo_conversations):
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    out = tmp_path / "run"

    def train(**overrides):
        config = Phase2Config(
            base_model=str(tiny_model_dir),
            output_dir=str(out),
            epochs=1,
            batch_size=3,
            device="cpu",
            cache_dir=str(tmp_path / "cache"),
            num_threads=1,
            **overrides,
        )
        trainer = Phase2Trainer(config, conversations=demo_conversations[:8])
        events = list(trainer.run())
        return trainer, events[-1]

    first, finished = train()
    assert finished.outcome == "completed"
    (out / "my-notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(InputError, match="--overwrite"):
        train()
    second, finished = train(overwrite=True)
    assert finished.outcome == "completed" and second.run_id != first.run_id
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["run_id"] == second.run_id
    assert (out / "my-notes.txt").read_text(encoding="utf-8") == "mine"  # not ours: kept
