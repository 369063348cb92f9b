"""Local LoRA up to the CUDA boundary, on the CPU: bf16 weights under autocast, gradient
checkpointing, LoRA on a multimodal base's language model only, resume on another
precision, the memory check before loading, the --device flag, measured throughput.
(No GPU here: the CUDA paths differ only in the device string and the dtype choice.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CancelledError, CognitiveTwinError
from cognitivetwin_core.phase1.jobs import Phase1Settings
from cognitivetwin_core.phase1.local_lora import LocalLoraRun, train_local_lora
from cognitivetwin_core.phase1.lora_device_plan import choose_precision
from tests.conftest import TINY_SHAPES, demo_chat_jsonl


@pytest.fixture()
def small_data(tmp_path) -> Path:
    return demo_chat_jsonl(tmp_path, 4, "small.jsonl")


def _run(data, base, tmp_path, **options) -> LocalLoraRun:
    # No dropout: the runs draw from one random stream, so masks would differ between them.
    settings = Phase1Settings(base_model=str(base), epochs=1, max_seq_length=96, lora_dropout=0.0)
    run = LocalLoraRun(data, base, tmp_path / "out", settings, max_batch_tokens=200, **options)
    run.prepare()
    return run


def test_precision_choice():
    assert choose_precision("cpu") == "fp32"  # bf16 matmuls are slow on most CPUs
    assert choose_precision("cpu", "bf16") == "bf16"
    assert choose_precision("mps") == "fp32"
    with pytest.raises(CognitiveTwinError, match="Unknown precision"):
        choose_precision("cpu", "fp8")


@pytest.mark.slow
def test_checkpointing_and_bf16_autocast_train_the_same_step(small_data, tiny_model_dir, tmp_path):
    import torch

    plain = _run(small_data, tiny_model_dir, tmp_path, device="cpu", gradient_checkpointing=False)
    checkpointed = _run(small_data, tiny_model_dir, tmp_path, device="cpu", gradient_checkpointing=True)
    bf16 = _run(small_data, tiny_model_dir, tmp_path, device="cpu", precision="bf16", gradient_checkpointing=True)
    assert not plain.model.base_model.model.model.gradient_checkpointing
    assert checkpointed.model.base_model.model.model.gradient_checkpointing
    batch = plain.per_epoch[0][0]
    assert checkpointed.per_epoch[0][0] == batch == bf16.per_epoch[0][0]
    loss_plain, loss_checkpointed, loss_bf16 = plain.step(batch), checkpointed.step(batch), bf16.step(batch)
    # Recomputing activations changes nothing; bf16 rounds but trains the same thing.
    assert loss_checkpointed == pytest.approx(loss_plain, rel=1e-5)
    assert loss_bf16 == pytest.approx(loss_plain, rel=0.02)
    for (name, a), (_, b) in zip(plain.model.named_parameters(), checkpointed.model.named_parameters()):
        if a.requires_grad:
            assert torch.allclose(a, b, atol=1e-6), name
    base_dtypes = {p.dtype for n, p in bf16.model.named_parameters() if not p.requires_grad}
    lora_dtypes = {p.dtype for p in bf16.trainable}
    assert base_dtypes == {torch.bfloat16} and lora_dtypes == {torch.float32}  # fp32 adapter over bf16 weights


@pytest.mark.slow
@pytest.mark.parametrize("shape", TINY_SHAPES)
def test_each_catalog_shape_trains_lora_on_its_language_model_only(small_data, tiny_catalog_model, shape, tmp_path):
    """Gemma 3 4B loads as Gemma3ForConditionalGeneration, whose vision tower has modules of
    the same names (q_proj, v_proj): they must not be wrapped (the text model alone is loaded)."""
    from safetensors import safe_open

    folder = tiny_catalog_model(shape)
    result = train_local_lora(
        small_data,
        folder,
        tmp_path / "adapter",
        Phase1Settings(base_model=str(folder), epochs=1, max_seq_length=96),
        device="cpu",
        precision="bf16",
        gradient_checkpointing=True,
        max_batch_tokens=200,
    )
    assert result.steps >= 1 and all(math.isfinite(loss) for loss in result.losses)
    with safe_open(str(result.adapter_dir / "adapter_model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
    assert keys and not any("vision" in k or "multi_modal" in k for k in keys), keys
    if shape.startswith("gemma3"):  # Gemma 3 4B trains as its text model alone (tests/test_gemma3_adapter.py)
        assert all(k.startswith("base_model.model.model.layers.") for k in keys), keys
    lineage = json.loads((result.adapter_dir / "lineage.json").read_text())
    assert lineage["precision"] == "bf16" and lineage["device"] == "cpu"
    assert lineage["tokens_per_second"] > 0


@pytest.mark.slow
def test_a_run_resumes_under_another_precision(small_data, tiny_model_dir, tmp_path):
    import torch

    settings = Phase1Settings(base_model=str(tiny_model_dir), epochs=3, max_seq_length=96)
    work = tmp_path / "work"
    seen, stop = [], Cancellation()
    with pytest.raises(CancelledError):
        train_local_lora(
            small_data,
            tiny_model_dir,
            tmp_path / "out",
            settings,
            work_dir=work,
            device="cpu",
            precision="bf16",
            max_batch_tokens=200,
            on_event=lambda e: e.kind == "step" and (seen.append(e.step) or len(seen) < 2 or stop.cancel()),
            cancellation=stop,
        )
    state = torch.load(work / "checkpoint" / "optimizer.pt", map_location="cpu", weights_only=True)
    tensors = [v for s in state["state"].values() for v in s.values() if isinstance(v, torch.Tensor)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    assert json.loads((work / "checkpoint" / "trainer_state.json").read_text())["precision"] == "bf16"
    resumed = []
    result = train_local_lora(
        small_data,
        tiny_model_dir,
        tmp_path / "out",
        settings,
        work_dir=work,
        device="cpu",
        precision="fp32",
        max_batch_tokens=None,  # sized to this device: a resumed run keeps the batches it began with
        on_event=lambda e: e.kind == "step" and resumed.append(e.step),
    )
    assert resumed[0] == 3 and result.precision == "fp32"
    assert json.loads((result.adapter_dir / "lineage.json").read_text())["max_batch_tokens"] == 200


def test_the_memory_check_refuses_before_loading(small_data, tiny_model_dir, tmp_path, monkeypatch):
    from cognitivetwin_core.models import memory

    monkeypatch.setattr(memory, "free_memory", lambda device: (256 * 1024**2, None))

    def no_loading(*args, **kwargs):
        raise AssertionError("loaded despite the memory check")

    monkeypatch.setattr("cognitivetwin_core.models.loader.load_base_model", no_loading)
    with pytest.raises(memory.InsufficientMemoryError, match="needs about .* but only 0.2 GiB is free"):
        train_local_lora(small_data, tiny_model_dir, tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()


def test_cli_device_flag(small_data, tiny_model_dir, tmp_path, capsys, isolated_user_dirs):
    import torch

    from cognitivetwin_core.cli import main

    args = ["phase1", "--local", "--workspace", str(tmp_path / "ws"), "--data", str(small_data)]
    args += ["--base-model", str(tiny_model_dir), "--max-seq-length", "96", "--dry-run"]
    if not torch.cuda.is_available():
        assert main([*args, "--device", "cuda"]) == 1
        assert "sees no CUDA GPU" in capsys.readouterr().err
    assert main([*args, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "memory: Training LoRA on" in out and "this fits" in out


def test_measured_speed_is_kept_and_feeds_the_next_estimate(small_data, tiny_model_dir, tmp_path):
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.phase1.local_jobs import LocalLoraJobs
    from cognitivetwin_core.phase1.throughput import measured_tokens_per_second

    with Workspace.open(tmp_path / "ws") as ws:
        backend = LocalLoraJobs(ws, device="cpu")
        settings = Phase1Settings(base_model=str(tiny_model_dir), epochs=1, max_seq_length=96)
        first = backend.dry_run(small_data, settings)
        assert "measured_tokens_per_second" not in first.limits  # nothing measured yet: a guess
        assert "rough guess" in first.estimate_note and first.limits["expected_seconds"] > 0
        job_id = backend.launch(first)
        assert backend.wait(job_id, interval=0.05).status == "completed"
        record = ws.get_phase1_job(job_id)
        assert record["tokens_per_second"] > 0 and record["device"] == "cpu"
        rate = measured_tokens_per_second(ws, str(tiny_model_dir), "cpu")
        assert rate == pytest.approx(record["tokens_per_second"])
        assert measured_tokens_per_second(ws, str(tiny_model_dir), "cuda:0") is None  # another kind of device
        second = backend.dry_run(small_data, settings)
        assert second.limits["measured_tokens_per_second"] == pytest.approx(rate)
        assert "measured" in second.estimate_note and second.limits["expected_seconds"] > 0
