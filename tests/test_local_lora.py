"""Local LoRA (PEFT): assistant-only labels, length batching, training, cancel/resume, backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import CancelledError
from cognitivetwin_core.paths import resources_dir
from cognitivetwin_core.phase1.assistant_tokens import (
    IGNORE_INDEX,
    evaluate_loss,
    length_batches,
    tokenize_conversation,
)
from cognitivetwin_core.phase1.backends import open_backend
from cognitivetwin_core.phase1.jobs import Phase1Settings, read_chat_jsonl
from cognitivetwin_core.phase1.local_jobs import LocalLoraJobs
from cognitivetwin_core.phase1.local_lora import train_local_lora
from tests.conftest import demo_chat_jsonl
from tests.waits import WORK_TIMEOUT_S

DEMO = resources_dir() / "demo" / "conversations.jsonl"


@pytest.fixture()
def small_data(tmp_path) -> Path:
    """Four demo conversations, as Phase 1 JSONL."""
    return demo_chat_jsonl(tmp_path, 4, "small.jsonl")


def test_labels_cover_assistant_turns_only(embedded_tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is two plus two?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "And three plus three?"},
        {"role": "assistant", "content": "Six, of course."},
    ]
    example = tokenize_conversation(embedded_tokenizer, messages, 512)
    labelled = [t for t, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX]
    text = embedded_tokenizer.decode(labelled)
    assert "Four." in text and "Six, of course." in text
    assert "two plus two" not in text and "Be brief" not in text and "user" not in text
    assert text.count("<|im_end|>") == 2  # each reply learns to end its turn
    unlabelled = embedded_tokenizer.decode(
        [t for t, label in zip(example.input_ids, example.labels) if label == IGNORE_INDEX]
    )
    assert "What is two plus two?" in unlabelled and "Four." not in unlabelled


def test_truncation_drops_conversations_without_a_reply_in_reach(embedded_tokenizer):
    messages = [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "ok"}]
    assert tokenize_conversation(embedded_tokenizer, messages, 64) is None
    kept = tokenize_conversation(embedded_tokenizer, messages, 1024)
    assert kept is not None and kept.length <= 1024


def test_length_batches_respect_the_token_budget(embedded_tokenizer):
    examples = [e for e in (tokenize_conversation(embedded_tokenizer, c, 512) for c in read_chat_jsonl(DEMO)) if e]
    batches = length_batches(examples, 2048, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(len(examples)))
    for batch in batches:
        assert max(examples[i].length for i in batch) * len(batch) <= 2048 or len(batch) == 1
    assert length_batches(examples, 2048, seed=3) == batches  # deterministic per seed


def test_short_run_on_embedded_model_lowers_loss_and_adapter_loads(small_data, embedded_model, tmp_path):
    from peft import PeftModel

    from cognitivetwin_core.models.frozen_base import load_frozen_base

    base, tokenizer = embedded_model
    conversations = read_chat_jsonl(small_data)
    # Short sequences and a few steps keep this under a minute on two busy cores.
    before = evaluate_loss(base, tokenizer, conversations, max_length=64)
    settings = Phase1Settings(
        base_model="smollm2-135m", epochs=3, learning_rate=2e-3, lora_r=8, lora_alpha=16, max_seq_length=64
    )
    events = []
    result = train_local_lora(
        small_data, "smollm2-135m", tmp_path / "adapter", settings, on_event=events.append, max_batch_tokens=1024
    )
    assert result.steps == events[-1].total_steps and result.steps >= 3
    assert [e.kind for e in events][0] == "start" and events[-1].kind == "done"
    assert any(e.kind == "step" and e.eta_seconds is not None for e in events)
    folder = result.adapter_dir
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "lineage.json",
    ]
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert sorted(config["target_modules"]) == ["q_proj", "v_proj"] and config["r"] == 8

    # Phase 2's loader takes this folder as is (it applies it with PeftModel.from_pretrained).
    tuned, _ = load_frozen_base("smollm2-135m", folder)
    assert isinstance(tuned, PeftModel)
    after = evaluate_loss(tuned, tokenizer, conversations, max_length=64)
    assert after < before - 0.05, (before, after)


@pytest.mark.slow
def test_cancel_keeps_a_checkpoint_and_the_next_run_resumes(small_data, tiny_model_dir, tmp_path):
    settings = Phase1Settings(
        base_model=str(tiny_model_dir), epochs=4, max_seq_length=96, validation_file=str(small_data)
    )
    work = tmp_path / "work"
    steps_seen = []

    stop = Cancellation()

    def stop_after_three(event):
        if event.kind == "step":
            steps_seen.append(event.step)
            if len(steps_seen) >= 3:
                stop.cancel()

    with pytest.raises(CancelledError, match="resumes"):
        train_local_lora(
            small_data,
            tiny_model_dir,
            tmp_path / "out",
            settings,
            work_dir=work,
            on_event=stop_after_three,
            cancellation=stop,
            max_batch_tokens=200,
        )
    assert (work / "checkpoint" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "out").exists()  # no half-written adapter
    resumed = []
    result = train_local_lora(
        small_data,
        tiny_model_dir,
        tmp_path / "out",
        settings,
        work_dir=work,
        on_event=lambda e: e.kind == "step" and resumed.append(e.step),
        max_batch_tokens=200,
    )
    assert resumed[0] == 4 and result.steps == resumed[-1]  # continued after step 3
    assert len(result.losses) == result.steps
    assert not work.exists()
    lineage = json.loads((result.adapter_dir / "lineage.json").read_text())
    assert len(lineage["validation_losses"]) >= 1 and all(v > 0 for v in lineage["validation_losses"])


def test_wait_returns_once_the_runs_thread_has_ended(small_data, tiny_model_dir, tmp_path, monkeypatch):
    """A run stores its end, then frees its model; a child process that exited in between
    aborted ("terminate called without an active exception"). Here the run lets go only once its
    end was reported, so a wait returning at the report leaves the thread alive."""
    import threading

    from cognitivetwin_core.phase1 import local_jobs

    end_reported = threading.Event()

    class LetsGoAfterTheReport(set):
        def discard(self, job_id):
            end_reported.wait(WORK_TIMEOUT_S)
            super().discard(job_id)

    monkeypatch.setattr(local_jobs, "_RUNNING_HERE", LetsGoAfterTheReport())

    def on_update(update):
        if update.terminal:
            end_reported.set()

    with Workspace.open(tmp_path / "ws") as ws:
        backend = LocalLoraJobs(ws, device="cpu")
        settings = Phase1Settings(base_model=str(tiny_model_dir), epochs=1, max_seq_length=96)
        job_id = backend.launch(backend.dry_run(small_data, settings))
        final = backend.wait(job_id, on_update=on_update, interval=0.05)
        assert final.status == "completed", final.message
        assert not [t for t in threading.enumerate() if t.name == f"local-lora-{job_id}"]


def test_local_backend_runs_as_a_phase1_job(small_data, tiny_model_dir, tmp_path):
    with Workspace.open(tmp_path / "ws") as ws:
        backend = open_backend("local", ws)
        assert isinstance(backend, LocalLoraJobs)
        settings = Phase1Settings(base_model=str(tiny_model_dir), epochs=1, max_seq_length=96)
        plan = backend.dry_run(small_data, settings)
        assert plan.data.examples == 4 and plan.estimated_price is None
        job_id = backend.launch(plan)
        updates = []
        final = backend.wait(job_id, on_update=updates.append, interval=0.05)
        assert final.status == "completed", final.message
        assert any(e["type"] == "step" for u in updates for e in u.new_events)
        folder = backend.download(job_id)
        assert (folder / "adapter_model.safetensors").is_file()
        adapter = ws.get_adapter(job_id)
        assert Path(adapter["path"]) == folder and adapter["lineage"]["backend"] == "local"
        copy = backend.download(job_id, tmp_path / "copy")
        assert (copy / "adapter_config.json").is_file()
        assert ws.get_phase1_job(job_id)["status"] == "completed"
    # A later process: a run still marked running whose process died is reported as interrupted;
    # one that a live process (here: this test's parent) is running is left alone.
    import os

    import psutil

    parent = psutil.Process(os.getppid())
    with Workspace.open(tmp_path / "ws") as ws:
        ws.upsert_phase1_job(
            "local-dead", {"backend": "local", "status": "running", "owner_pid": 2**22 + 12345, "owner_started": 1.0}
        )
        ws.upsert_phase1_job(
            "local-elsewhere",
            {"backend": "local", "status": "running", "owner_pid": parent.pid, "owner_started": parent.create_time()},
        )
        backend = LocalLoraJobs(ws)
        assert ws.get_phase1_job("local-dead")["status"] == "interrupted"
        assert ws.get_phase1_job("local-elsewhere")["status"] == "running"
        assert backend.unfinished_jobs() == ["local-elsewhere"]
