"""Local LoRA after an out-of-memory error: the step is retried in smaller pieces with the same
result, or the run ends with one sentence and keeps what it had. No GPU here: the decoder's
forward raises the real `torch.OutOfMemoryError` (what CUDA's allocator raises) whenever a
pass holds more tokens than a pretend memory limit, so everything up to the CUDA allocator
runs for real; `torch.cuda.empty_cache()` itself is not reached on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cognitivetwin_core.phase1.jobs import Phase1Settings
from cognitivetwin_core.phase1.local_lora import LocalLoraOutOfMemoryError, train_local_lora
from tests.conftest import demo_chat_jsonl

BUDGET = 400  # padded tokens a step as planned: 2 to 4 conversations of up to 96 tokens


@pytest.fixture()
def data(tmp_path) -> Path:
    return demo_chat_jsonl(tmp_path, 8)


class MemoryLimit:
    """Patches the tiny Llama's decoder forward: a training pass over more than `tokens`
    (padded) tokens raises torch.OutOfMemoryError, worded as CUDA words it."""

    def __init__(self, monkeypatch, tokens: int):
        import torch
        from transformers.models.llama import modeling_llama

        self.tokens = tokens
        self.passes: list[tuple[int, bool]] = []  # (tokens, failed) of each training pass
        original = modeling_llama.LlamaModel.forward

        def forward(model, input_ids=None, **kwargs):
            if torch.is_grad_enabled() and input_ids is not None:
                failed = input_ids.numel() > self.tokens
                self.passes.append((input_ids.numel(), failed))
                if failed:
                    raise torch.OutOfMemoryError(
                        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.64 GiB "
                        "of which 1.12 GiB is free."
                    )
            return original(model, input_ids=input_ids, **kwargs)

        monkeypatch.setattr(modeling_llama.LlamaModel, "forward", forward)


def _train(data, base, out, work, **options):
    settings = Phase1Settings(base_model=str(base), epochs=2, max_seq_length=96, lora_dropout=0.0)
    return train_local_lora(
        data, base, out, settings, work_dir=work, device="cpu", max_batch_tokens=BUDGET, seed=1, **options
    )


def _adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.mark.slow
def test_an_out_of_memory_step_is_retried_in_smaller_pieces_with_the_same_result(
    data, tiny_model_dir, tmp_path, monkeypatch, torch_one_thread
):
    import torch

    reference = _train(data, tiny_model_dir, tmp_path / "reference", tmp_path / "w1")
    assert reference.oom_retries == 0 and reference.step_tokens == BUDGET

    limit = MemoryLimit(monkeypatch, tokens=250)  # the larger steps do not fit at 400 tokens
    events = []
    result = _train(data, tiny_model_dir, tmp_path / "out", tmp_path / "w2", on_event=events.append)

    failed = [tokens for tokens, failed in limit.passes if failed]
    assert failed and all(tokens > 250 for tokens in failed)
    assert result.oom_retries == 1 and result.step_tokens == BUDGET // 2
    assert all(tokens <= BUDGET // 2 for tokens, _ in limit.passes[limit.passes.index((failed[0], True)) + 1 :])
    memory = [e for e in events if e.kind == "memory"]
    assert len(memory) == 1
    assert "Out of memory on cpu" in memory[0].message and "200 tokens (was 400)" in memory[0].message
    # The same optimizer steps on the same conversations: the same losses and the same adapter.
    assert result.steps == reference.steps and result.trained_tokens == reference.trained_tokens
    assert result.losses == pytest.approx(reference.losses, rel=1e-4, abs=1e-5)
    ours, theirs = _adapter(result.adapter_dir), _adapter(reference.adapter_dir)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.allclose(ours[key], theirs[key], atol=1e-5), key
    lineage = json.loads((result.adapter_dir / "lineage.json").read_text())
    assert lineage["max_batch_tokens"] == BUDGET  # the batches as planned, and as fingerprinted


@pytest.mark.slow
def test_out_of_memory_on_every_attempt_ends_with_a_sentence_and_writes_nothing(
    data, tiny_model_dir, tmp_path, monkeypatch, torch_one_thread
):
    limit = MemoryLimit(monkeypatch, tokens=0)
    events = []
    with pytest.raises(LocalLoraOutOfMemoryError) as caught:
        _train(data, tiny_model_dir, tmp_path / "out", tmp_path / "work", on_event=events.append)
    message = str(caught.value)
    assert message.startswith("Out of memory on cpu even in pieces of")
    assert "LoRA rank (now 16)" in message and "maximum sequence length (now 96)" in message
    assert "smaller base" in message and "close other programs" in message and "\n" not in message
    assert "kept" not in message  # no step finished, so there is nothing to keep
    # It halved until one conversation a piece or MIN_STEP_TOKENS, then stopped.
    assert 2 <= len(limit.passes) <= 3 and [t for t, _ in limit.passes] == sorted(
        (t for t, _ in limit.passes), reverse=True
    )
    assert [e.kind for e in events].count("memory") == len(limit.passes) - 1
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "work" / "checkpoint").exists()
    assert not [p for p in tmp_path.rglob("*.tmp-*")]  # no half-written staging folder


@pytest.mark.slow
def test_running_out_later_keeps_the_steps_done_and_the_run_resumes(
    data, tiny_model_dir, tmp_path, monkeypatch, torch_one_thread
):
    """Retried steps do not change the resume fingerprint: a later run (here: with the memory
    to spare, as on the CPU) continues from the checkpoint written when memory ran out."""
    reference = _train(data, tiny_model_dir, tmp_path / "reference", tmp_path / "w1")
    limit = MemoryLimit(monkeypatch, tokens=250)
    steps = []

    def on_event(event):
        if event.kind == "step":
            steps.append(event.step)
            if len(steps) == 3:
                limit.tokens = 0  # from here on nothing fits

    work = tmp_path / "work"
    with pytest.raises(LocalLoraOutOfMemoryError, match="its first 3 steps are kept"):
        _train(data, tiny_model_dir, tmp_path / "out", work, on_event=on_event, checkpoint_every=0)
    state = json.loads((work / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 3 and state["fingerprint"]["max_batch_tokens"] == BUDGET
    assert not (tmp_path / "out").exists()

    monkeypatch.undo()
    resumed = []
    result = _train(
        data, tiny_model_dir, tmp_path / "out", work, on_event=lambda e: e.kind == "step" and resumed.append(e.step)
    )
    assert resumed[0] == 4 and result.steps == reference.steps
    # On the same device it starts in the pieces that fitted (the planned batches are unchanged).
    assert result.step_tokens == state["step_tokens"] < BUDGET
    assert result.losses == pytest.approx(reference.losses, rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_running_out_inside_the_optimizer_step_keeps_only_the_last_checkpoint(
    data, tiny_model_dir, tmp_path, monkeypatch, torch_one_thread
):
    """Adam allocates its moments on its first step, and may run out there: part of the weights
    may have moved by then, so that step is neither retried nor saved."""
    import torch

    original = torch.optim.AdamW.step
    calls = []

    def step(optimizer, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 MiB.")
        return original(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    work = tmp_path / "work"
    with pytest.raises(LocalLoraOutOfMemoryError, match="its first 2 steps are kept"):
        _train(data, tiny_model_dir, tmp_path / "out", work, checkpoint_every=2)
    assert json.loads((work / "checkpoint" / "trainer_state.json").read_text())["step"] == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_cli_says_it_in_words(data, tiny_model_dir, tmp_path, monkeypatch, capsys, isolated_user_dirs):
    """What a person running `phase1 --local` reads: the retry as it happens, and the sentence."""
    from cognitivetwin_core.cli import main

    def phase1(workspace: str) -> int:
        args = ["phase1", "--workspace", workspace, "--local", "--base-model", str(tiny_model_dir)]
        args += ["--data", str(data), "--max-seq-length", "96", "--max-batch-tokens", str(BUDGET), "--device", "cpu"]
        return main(args)

    limit = MemoryLimit(monkeypatch, tokens=250)
    assert phase1(str(tmp_path / "ws")) == 0
    out = capsys.readouterr().out
    assert "memory: Out of memory on cpu: this step is tried again in pieces of at most 200 tokens" in out
    assert "completed" in out

    limit.tokens = 0
    assert phase1(str(tmp_path / "ws2")) != 0
    captured = capsys.readouterr()
    assert "Out of memory on cpu even in pieces of" in captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err
