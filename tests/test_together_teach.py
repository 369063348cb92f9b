"""Teach on Together: the edits go up in Together's preference format and a DPO job continues
the twin's own job; the real `together` SDK against the loopback fake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from together_server import FakeTogether, make_tiny_lora_adapter

from cognitivetwin_core.cli import main
from cognitivetwin_core.data.feedback import BAD, EDIT, GOOD, add_feedback
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.phase1.jobs import Phase1Settings, read_job
from cognitivetwin_core.phase1.teach_feedback import ancestry
from cognitivetwin_core.phase1.together_jobs import TogetherJobManager

SETTINGS = Phase1Settings(base_model="llama-3.2-1b", epochs=1, lora_r=8, lora_alpha=16, suffix="my-twin")
EDITED = [
    ("what do you drink in the morning?", "I am an AI and do not drink.", "builder's tea, two sugars"),
    ("weekend plans?", "As an assistant I have no plans.", "fell running, mail me at sam.hill@example.org"),
]


@pytest.fixture(scope="module")
def served_adapter(tiny_model_dir, tmp_path_factory):
    return make_tiny_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("served-adapter"))


@pytest.fixture()
def fake(served_adapter, monkeypatch):
    with FakeTogether(adapter_dir=served_adapter) as server:
        monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
        monkeypatch.setenv("TOGETHER_API_KEY", server.api_key)
        yield server


def _manager(fake, workspace) -> TogetherJobManager:
    return TogetherJobManager(
        workspace, api_key=fake.api_key, base_url=fake.base_url, sleep=lambda s: None, poll_interval=0.0
    )


@pytest.fixture()
def together_twin(fake, tmp_path) -> tuple[Path, str, Path]:
    """(workspace folder, the parent job id, the adapter downloaded from it)."""
    data = tmp_path / "phase1.jsonl"
    data.write_text(
        "".join(
            json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]})
            + "\n"
            for i in range(4)
        ),
        encoding="utf-8",
    )
    ws_path = tmp_path / "ws"
    with Workspace.open(ws_path) as workspace:
        jobs = _manager(fake, workspace)
        job_id = jobs.launch(jobs.dry_run(data, SETTINGS))
        assert jobs.wait(job_id).status == "completed"
        folder = jobs.download(job_id)
    return ws_path, job_id, folder


def _feedback(ws_path: Path, adapter: Path, *, edits: bool = True) -> list[int]:
    with Workspace.open(ws_path) as workspace:
        ids = [add_feedback(workspace, adapter, "hello?", "Hello! How can I help?", verdict=GOOD).id]
        ids.append(add_feedback(workspace, adapter, "you ok?", "I am a language model.", verdict=BAD).id)
        if edits:
            for context, reply, edit in EDITED:
                ids.append(add_feedback(workspace, adapter, context, reply, verdict=EDIT, edit=edit).id)
    return ids


def _teach(ws_path: Path, adapter: Path, *extra: str) -> int:
    return main(["teach", "--adapter", str(adapter), "--workspace", str(ws_path), *extra])


def test_a_together_twin_is_taught_by_a_dpo_job_continuing_its_own(fake, together_twin, capsys):
    ws_path, parent_job, parent_dir = together_twin
    ids = _feedback(ws_path, parent_dir)
    capsys.readouterr()
    assert _teach(ws_path, parent_dir, "--yes") == 0  # no --together: the lineage says Together
    out = capsys.readouterr().out.strip().splitlines()
    job_id = out[-1]
    assert job_id.startswith("ft-") and job_id != parent_job

    body = fake.create_bodies[-1]
    assert body["from_checkpoint"] == parent_job and "model" not in body  # the SDK refuses both
    assert body["training_method"]["method"] == "dpo" and body["training_method"]["dpo_beta"] == 0.1
    assert body["training_method"]["rpo_alpha"] == 1.0  # the supervised term on the edits
    assert "training_type" not in body  # inherited from the parent job
    assert body["suffix"] == "my-twin-taught"
    uploaded = fake.files[body["training_file"]]
    assert uploaded["validation_report"]["valid"] and uploaded["validation_report"]["dataset_format"] == "PREFERENCE"
    lines = [json.loads(line) for line in uploaded["content"].decode().splitlines()]
    assert lines == [
        {
            "input": {"messages": [{"role": "user", "content": context}]},
            "preferred_output": [{"role": "assistant", "content": edit}],
            "non_preferred_output": [{"role": "assistant", "content": reply}],
        }
        for context, reply, edit in EDITED
    ]
    estimate = fake.estimate_bodies[-1]
    assert estimate["from_checkpoint"] == parent_job and estimate["training_method"]["method"] == "dpo"

    with Workspace.open(ws_path) as workspace:
        record = read_job(workspace, job_id)
        assert record.backend == "together" and record.base_model == "llama-3.2-1b"
        teach = record.extra["teach"]
        assert teach["parent_job"] == parent_job and teach["parent_adapter"] == str(parent_dir.resolve())
        assert teach["feedback_ids"] == ids[2:]  # the edited pairs only
        # The ordinary Phase 1 machinery follows and downloads it.
        jobs = _manager(fake, workspace)
        assert jobs.wait(job_id).status == "completed"
        taught = jobs.download(job_id)
    lineage = json.loads((taught / "lineage.json").read_text())
    assert lineage["job_id"] == job_id and lineage["method"] == "dpo" and lineage["feedback_ids"] == ids[2:]
    assert ancestry(taught)[1] == parent_dir.resolve()  # so its feedback carries on to the next Teach


def test_dry_run_shows_the_request_and_price_and_creates_nothing(fake, together_twin, capsys):
    ws_path, parent_job, parent_dir = together_twin
    _feedback(ws_path, parent_dir)
    created = len(fake.create_bodies)
    capsys.readouterr()
    assert _teach(ws_path, parent_dir, "--together", "--dry-run", "--epochs", "2") == 0
    out = capsys.readouterr().out
    assert len(fake.create_bodies) == created
    assert "estimated price: $" in out and f'"from_checkpoint": "{parent_job}"' in out
    assert '"training_method": "dpo"' in out and '"n_epochs": 2' in out
    assert '"preferred_output": [{"role": "assistant", "content": "builder' in out
    assert "[[sam.hill@example.org]]" in out and "feedback undo" in out  # what leaves the computer
    assert fake.api_key not in out


def test_thumbs_only_are_refused_in_one_sentence(fake, together_twin, capsys):
    ws_path, _parent_job, parent_dir = together_twin
    _feedback(ws_path, parent_dir, edits=False)
    uploads = fake.count("POST", r"^/v1/files$")
    capsys.readouterr()
    assert _teach(ws_path, parent_dir, "--yes") != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs pairs" in err and "edit" in err
    assert fake.count("POST", r"^/v1/files$") == uploads


def test_a_missing_key_is_refused_in_one_sentence(fake, together_twin, capsys, monkeypatch):
    ws_path, _parent_job, parent_dir = together_twin
    _feedback(ws_path, parent_dir)
    monkeypatch.delenv("TOGETHER_API_KEY")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    capsys.readouterr()
    assert _teach(ws_path, parent_dir, "--yes") != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("Together API key" in err or "keyring" in err.lower())
    assert fake.count("POST", r"^/v1/files$") == 1  # the parent's upload only: nothing was sent


def test_together_flag_on_a_local_adapter_is_refused(fake, together_twin, tmp_path, capsys):
    ws_path, _parent_job, parent_dir = together_twin
    local = tmp_path / "local-adapter"
    local.mkdir()
    (local / "adapter_config.json").write_text((parent_dir / "adapter_config.json").read_text())
    capsys.readouterr()
    assert _teach(ws_path, local, "--together", "--yes") != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did not come from a Together job" in err


def test_a_rejected_pairs_file_is_explained_in_the_preference_format(fake, together_twin, capsys):
    ws_path, _parent_job, parent_dir = together_twin
    _feedback(ws_path, parent_dir)
    fake.reject_uploads = "Line 1: 'preferred_output' must hold exactly one assistant message"
    capsys.readouterr()
    assert _teach(ws_path, parent_dir, "--dry-run") != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Together rejected the training file teach-" in err
    assert '"non_preferred_output"' in err and '"messages"' in err


def test_options_of_the_other_path_are_refused_before_anything_runs(fake, together_twin, tmp_path, capsys):
    ws_path, _parent_job, parent_dir = together_twin
    _feedback(ws_path, parent_dir)
    capsys.readouterr()
    assert _teach(ws_path, parent_dir, "--max-steps", "3") != 0
    assert "--max-steps only apply to teaching on this computer" in capsys.readouterr().err
    local = tmp_path / "local-adapter"
    local.mkdir()
    (local / "adapter_config.json").write_text((parent_dir / "adapter_config.json").read_text())
    assert _teach(ws_path, local, "--dry-run") != 0  # a local Teach has no dry run: it must not train
    assert "--dry-run only apply to teaching on Together" in capsys.readouterr().err
