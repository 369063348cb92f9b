"""`cognitivetwin phase1`: the whole Together lifecycle against the loopback fake, and --local."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from together_server import FakeTogether, make_tiny_lora_adapter

from cognitivetwin_core.cli import main
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.paths import resources_dir
from cognitivetwin_core.phase1.jobs import read_chat_jsonl
from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("cli-adapter"))


@pytest.fixture()
def fake(adapter_dir, monkeypatch, isolated_user_dirs):
    with FakeTogether(adapter_dir=adapter_dir) as server:
        monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
        monkeypatch.setenv("TOGETHER_API_KEY", server.api_key)
        yield server


@pytest.fixture()
def data_file(tmp_path) -> Path:
    conversations = read_chat_jsonl(resources_dir() / "demo" / "conversations.jsonl")[:5]
    path = tmp_path / "phase1.jsonl"
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations), encoding="utf-8")
    return path


def run(*args: str) -> int:
    return main(["phase1", *args])


def test_together_lifecycle_through_the_cli(fake, data_file, tmp_path, capsys):
    ws = str(tmp_path / "ws")
    assert (
        run(
            "--workspace",
            ws,
            "--model",
            "llama-3.2-3b",
            "--epochs",
            "3",
            "--suffix",
            "my-twin",
            "--data",
            str(data_file),
            "--yes",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "estimated price: $" in out and "LoRA rank <= 64" in out
    job_id = next(word for word in out.split() if word.startswith("ft-"))
    assert fake.create_bodies[-1]["training_type"]["lora_r"] == 16
    assert fake.create_bodies[-1]["n_epochs"] == 3 and fake.create_bodies[-1]["suffix"] == "my-twin"

    assert run("--workspace", ws, "--list") == 0
    listing = capsys.readouterr().out
    assert job_id in listing and "together" in listing

    assert run("--workspace", ws, "--check-job", job_id) == 0
    assert f"{job_id}: queued" in capsys.readouterr().out

    assert run("--workspace", ws, "--wait-job", job_id, "--poll-interval", "0") == 0
    waited = capsys.readouterr().out
    assert "training_start" in waited and "completed" in waited and "step 12/12" in waited

    out_dir = tmp_path / "adapter"
    assert run("--workspace", ws, "--download", job_id, "--output-dir", str(out_dir)) == 0
    assert (out_dir / "adapter_config.json").is_file() and (out_dir / "adapter_model.safetensors").is_file()
    with Workspace.open(ws) as workspace:
        assert workspace.get_adapter(f"together-{job_id}")["path"] == str(out_dir)


def test_dry_run_launches_nothing(fake, data_file, tmp_path, capsys):
    assert run("--workspace", str(tmp_path / "ws"), "--data", str(data_file), "--dry-run") == 0
    assert "estimated price" in capsys.readouterr().out
    assert fake.create_bodies == [] and len(fake.files) == 1


def test_dry_run_of_a_messenger_chat_shows_the_persons_turns_and_the_privacy_check(fake, tmp_path, capsys):
    chat = Path(__file__).parent / "fixtures" / "messenger" / "WhatsApp Chat with Cabin trip.txt"
    ws = str(tmp_path / "ws")
    assert main(["data", "import", "--workspace", ws, str(chat), "--quiet", "--me", "Maya Lindqvist"]) == 0
    capsys.readouterr()
    assert run("--workspace", ws, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "you (learned): last call for the grocery list" not in out  # the last turn is the target
    assert "you (learned): done" in out and "them (context): oat milk pls" in out
    # Only what is uploaded is checked: the e-mail is in a conversation that cannot be an example.
    assert "privacy check: 2 personal details" in out and "[[+1 415-555-0132]]" in out
    assert "maya.cabins@example.org" not in out
    assert fake.create_bodies == []
    # --redact: the uploaded file holds placeholders, and the check finds nothing left.
    assert run("--workspace", ws, "--dry-run", "--redact", "--me", "Priya Nair") == 0
    out = capsys.readouterr().out
    assert "you (learned): oat milk pls" in out
    assert "privacy check: no personal data found" in out
    uploaded = sorted((Path(ws) / "exports").glob("phase1-*.jsonl"))[-1].read_text(encoding="utf-8")
    assert "<PHONE>" in uploaded and "415-555-0132" not in uploaded


def test_failed_job_exits_non_zero_with_its_last_events(fake, data_file, tmp_path, capsys):
    ws = str(tmp_path / "ws")
    fake.next_job_outcome = "user_error"
    assert run("--workspace", ws, "--data", str(data_file), "--yes") == 0
    job_id = next(w for w in capsys.readouterr().out.split() if w.startswith("ft-"))
    assert run("--workspace", ws, "--wait-job", job_id, "--poll-interval", "0") == 1
    err = capsys.readouterr().err
    assert "Data validation failed" in err and "Traceback" not in err


def test_cancel(fake, data_file, tmp_path, capsys):
    ws = str(tmp_path / "ws")
    assert run("--workspace", ws, "--data", str(data_file), "--yes") == 0
    job_id = next(w for w in capsys.readouterr().out.split() if w.startswith("ft-"))
    assert run("--workspace", ws, "--cancel", job_id) == 0
    assert "cancel_requested" in capsys.readouterr().out
    assert run("--workspace", ws, "--wait-job", job_id, "--poll-interval", "0") == 1
    assert "cancelled" in capsys.readouterr().err


def test_download_needs_output_dir_and_a_completed_job(fake, data_file, tmp_path, capsys):
    ws = str(tmp_path / "ws")
    assert run("--workspace", ws, "--data", str(data_file), "--yes") == 0
    job_id = next(w for w in capsys.readouterr().out.split() if w.startswith("ft-"))
    assert run("--workspace", ws, "--download", job_id) == 2
    assert "--output-dir" in capsys.readouterr().err
    assert run("--workspace", ws, "--download", job_id, "--output-dir", str(tmp_path / "x")) == 2
    assert "not completed" in capsys.readouterr().err


def _cli(env: dict, *args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cognitivetwin_core", "phase1", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=WORK_TIMEOUT_S,
        stdin=stdin,
    )


@pytest.mark.slow
def test_subprocess_refuses_without_a_terminal_and_fails_in_one_sentence(fake, data_file, tmp_path):
    env = {**os.environ}
    ws = str(tmp_path / "ws")
    refused = _cli(env, "--workspace", ws, "--data", str(data_file))
    assert refused.returncode != 0 and "--yes" in refused.stderr and "Traceback" not in refused.stderr
    assert fake.create_bodies == []  # nothing was spent

    wrong_key = "tgp_wrong_key_abcdefghijklmnop0123456789"
    bad = _cli({**env, "TOGETHER_API_KEY": wrong_key}, "--workspace", ws, "--data", str(data_file), "--yes")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "API key" in bad.stderr and wrong_key not in bad.stderr + bad.stdout
    assert len(bad.stderr.strip().splitlines()) == 1

    unknown = _cli(env, "--workspace", ws, "--check-job", "ft-00000000-0000-0000-0000-000000000000")
    assert unknown.returncode != 0 and "Traceback" not in unknown.stderr and unknown.stderr.startswith("error: ")


def test_no_key_anywhere(fake, data_file, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TOGETHER_API_KEY"}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    result = _cli(env, "--workspace", str(tmp_path / "ws"), "--data", str(data_file), "--yes")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "TOGETHER_API_KEY" in result.stderr or "keyring" in result.stderr.lower()
    assert fake.requests == []


def test_local_training_through_the_cli(tiny_model_dir, data_file, tmp_path, capsys, isolated_user_dirs):
    ws = str(tmp_path / "ws")
    assert (
        run(
            "--workspace",
            ws,
            "--local",
            "--base-model",
            str(tiny_model_dir),
            "--data",
            str(data_file),
            "--epochs",
            "3",
            "--max-steps",
            "2",
            "--max-seq-length",
            "96",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Launched local job local-" in out and "completed" in out
    assert "The loss " in out  # fell, stayed about the same or rose: said in words (training_verdicts)
    with Workspace.open(ws) as workspace:
        (adapter,) = workspace.adapters()
        assert (Path(adapter["path"]) / "adapter_model.safetensors").is_file()
        assert adapter["lineage"]["steps"] == 2


def test_local_dry_run_cuts_examples_to_the_local_length_and_checks_no_privacy(
    tiny_model_dir, tmp_path, capsys, isolated_user_dirs, embedded_tokenizer
):
    chat = Path(__file__).parent / "fixtures" / "messenger" / "WhatsApp Chat with Cabin trip.txt"
    ws = str(tmp_path / "ws")
    assert main(["data", "import", "--workspace", ws, str(chat), "--quiet"]) == 0
    capsys.readouterr()
    args = ["--workspace", ws, "--local", "--base-model", str(tiny_model_dir), "--max-seq-length", "60"]
    assert run(*args, "--me", "Maya Lindqvist", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "you (learned): done" in out and "privacy check" not in out  # nothing leaves the computer
    exported = sorted((Path(ws) / "exports").glob("phase1-*.jsonl"))[-1]
    for line in exported.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        assert messages[-1]["role"] == "assistant"
        encoded = embedded_tokenizer.apply_chat_template(messages, tokenize=True)
        assert len(encoded["input_ids"] if hasattr(encoded, "keys") else encoded) <= 60
