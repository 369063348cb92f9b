"""Teach: continue the twin's own adapter from the person's feedback (preference tuning).

    result = teach_twin(workspace, adapter_dir, max_steps=20, device="auto", on_event=print)
    result.adapter_dir   # a new adapter folder beside the others; the parent is left as it was

What it trains on (data/feedback.py, chosen in phase1/teach_feedback.py): the feedback given
on this adapter or any adapter it descends from, less what those versions were already
taught from (unless `include_taught`). Where the person edited replies, DPO on (edit ≻ the twin's reply) pairs,
plus a supervised (SFT) term on the edits so the twin moves towards the person's words and
not merely away from its own; where there are only thumbs, KTO (it needs at least one up and
one down). The reference model is the twin itself: TRL is given the trained PeftModel
(trainable) and no LoRA config, so it keeps a frozen copy of the parent adapter as the
reference. Device and precision are chosen as local Phase 1 chooses them
(phase1/lora_device_plan.py), precision always set explicitly (TRL would default to bf16), and the
memory check of models/memory.py runs before loading. `on_event(TeachEvent)` reports every
step's loss and reward margin; its `cancellation` is checked between steps, and Stop keeps
the run in a checkpoint tied to the parent adapter that `resume=True` continues from the
same step with the same data order (phase1/teach_checkpoint.py).

The new folder has the usual adapter files and a `lineage.json` naming its parent, the
method and the feedback ids used; it is registered in the workspace. See
docs/teaching-and-memory.md.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CancelledError, InputError
from cognitivetwin_core.phase1.teach_feedback import DPO, teaching_data

log = logging.getLogger(__name__)

DEFAULT_MAX_STEPS = 30
DEFAULT_LEARNING_RATE = 2e-4  # LoRA weights, a few dozen steps: higher than full-model DPO's 5e-7
DEFAULT_BETA = 0.1
SFT_WEIGHT = 1.0  # weight of the supervised term on the edits, beside DPO's own (1.0)
MAX_LENGTH = 512  # tokens of context + reply; longer contexts keep their start
BATCH_SIZE = 2


@dataclass
class TeachEvent:
    kind: str  # "start", "step", "done"
    step: int
    total_steps: int
    loss: float | None = None
    margin: float | None = None  # mean reward of the preferred replies minus the others'
    message: str = ""


@dataclass
class TeachResult:
    adapter_dir: Path
    parent_dir: Path
    method: str
    steps: int
    feedback_ids: list[int]
    losses: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)
    device: str = "cpu"
    precision: str = "fp32"
    seconds: float = 0.0
    edited_pairs: dict | None = None  # preference_change: the edits preferred, before and after

    def verdict(self) -> str:
        """The outcome in plain words (what the CLI prints and the app shows)."""
        pairs = self.edited_pairs
        if not pairs:
            return f"Taught from {len(self.feedback_ids)} thumbs in {self.steps} steps."
        return (
            f"On your {pairs['pairs']} edited replies, the new version prefers your wording over its own more than "
            f"the previous version did on {pairs['improved']} of them (log-odds {pairs['before']:+.2f} → "
            f"{pairs['after']:+.2f} on average; above 0 means your wording is the likelier)."
        )


class _Progress:
    """A TRL callback: each logged step to `on_event` (numbered from `offset`, the steps done
    before a resume), Stop between steps (the random state at that moment kept for the checkpoint)."""

    def __init__(self, on_event, cancellation, total_steps: int, losses: list, margins: list, offset: int = 0):
        from transformers import TrainerCallback

        from cognitivetwin_core.phase1.teach_checkpoint import random_state

        outer = self

        class Callback(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                logs = logs or {}
                if "loss" not in logs:
                    return
                loss = float(logs["loss"])
                margin = logs.get("rewards/margins")
                if margin is None and "rewards/chosen_sum" in logs:  # KTO logs sums per label
                    margin = logs.get("rewards/chosen_sum", 0.0) - logs.get("rewards/rejected_sum", 0.0)
                margin = None if margin is None else float(margin)
                losses.append(loss)
                if margin is not None:
                    margins.append(margin)
                if on_event:
                    on_event(TeachEvent("step", offset + state.global_step, total_steps, loss, margin))
                self.stop_if_asked(state, control, kwargs)  # a Stop pressed as this step was shown

            def on_step_end(self, args, state, control, **kwargs):
                self.stop_if_asked(state, control, kwargs)

            def stop_if_asked(self, state, control, kwargs):
                outer.step = offset + state.global_step
                if cancellation is not None and cancellation.cancelled and outer.step < total_steps:
                    if not outer.stopped:
                        outer.optimizer, outer.scheduler = kwargs.get("optimizer"), kwargs.get("lr_scheduler")
                        outer.rng = random_state()
                    outer.stopped = True
                    control.should_training_stop = True

        self.stopped = False
        self.step = offset
        self.optimizer = self.scheduler = None
        self.rng: dict = {}
        self.callback = Callback()


def _new_folder(workspace, parent: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem = parent.name.split("-taught-")[0]
    folder = Path(workspace.adapters_dir) / f"{stem}-taught-{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = Path(workspace.adapters_dir) / f"{stem}-taught-{stamp}-{suffix}"
    return folder


def teach_twin(
    workspace,
    adapter_dir: str | Path,
    *,
    base_model: str | Path | None = None,
    max_steps: int | None = None,
    device: str | None = "auto",
    precision: str | None = "auto",
    learning_rate: float | None = None,
    beta: float = DEFAULT_BETA,
    seed: int = 0,
    output_dir: str | Path | None = None,
    on_event: Callable[[TeachEvent], None] | None = None,
    cancellation: Cancellation | None = None,
    check_memory: bool = True,
    resume: bool = False,
    include_taught: bool = False,
) -> TeachResult:
    """Train a new version of the twin in `adapter_dir` from the workspace's feedback on it.

    Stop keeps the run (phase1/teach_checkpoint.py); `resume=True` continues the twin's stopped
    run, its settings by default (refused in one sentence when there is none, or when the
    feedback or settings changed). Without `resume` a run starts over. Feedback already taught
    into the twin or a version it came from is left out unless `include_taught`."""
    from cognitivetwin_core.atomic_files import write_dir_atomically
    from cognitivetwin_core.models.devices import select_device
    from cognitivetwin_core.phase1.adapter_archive import adapter_base_model, read_lineage, write_lineage
    from cognitivetwin_core.phase1.lora_device_plan import choose_precision
    from cognitivetwin_core.phase1.teach_checkpoint import (
        RESUMABLE_SETTINGS,
        refuse_changed,
        save_stopped,
        saved_state_to_resume,
        teach_checkpoint,
        teach_fingerprint,
    )
    from cognitivetwin_core.phase1.teach_feedback import feedback_to_teach

    started = time.monotonic()
    parent = Path(adapter_dir).expanduser().resolve()
    base = str(base_model) if base_model else adapter_base_model(parent)
    records = feedback_to_teach(workspace, parent, include_taught=include_taught)
    method, rows, feedback_ids = teaching_data(records)
    checkpoint = teach_checkpoint(workspace, parent)
    saved = saved_state_to_resume(checkpoint) if resume else None
    given = {"max_steps": max_steps, "learning_rate": learning_rate}
    for key in RESUMABLE_SETTINGS:
        if given[key] is None and saved is not None:
            given[key] = (saved.get("fingerprint") or {}).get(key)
    settings = {
        "max_steps": int(given["max_steps"] or DEFAULT_MAX_STEPS),
        "learning_rate": float(given["learning_rate"] or DEFAULT_LEARNING_RATE),
        "beta": beta,
        "seed": seed,
        "batch_size": BATCH_SIZE,
        "max_length": MAX_LENGTH,
        "sft_weight": SFT_WEIGHT,
    }
    fingerprint = teach_fingerprint(parent, base, method, feedback_ids, settings)
    if saved is not None:
        refuse_changed(checkpoint, saved, fingerprint)
    steps = settings["max_steps"]
    start = int(saved["step"]) if saved else 0
    device = select_device(device)
    precision = choose_precision(device, precision)
    parent_config = json.loads((parent / "adapter_config.json").read_text(encoding="utf-8"))
    if check_memory:
        from cognitivetwin_core.models.memory import require_memory

        # Each step holds a preferred and a rejected reply of BATCH_SIZE examples.
        require_memory(
            base,
            purpose="lora",
            device=device,
            dtype="bfloat16" if precision == "bf16" else "float32",
            batch_tokens=2 * BATCH_SIZE * MAX_LENGTH,
            lora_rank=int(parent_config.get("r") or 8),
            lora_modules=len(parent_config.get("target_modules") or ()) or 2,
            gradient_checkpointing=device != "cpu",
        )
    kept = None if saved else checkpoint.state()  # a stopped run this one starts over from
    if on_event:
        again = f", resuming at step {start + 1}" if start else ""
        if kept:
            again = (
                f", starting over (the run stopped at step {kept.get('step')} is kept until this one stops or "
                "finishes; resume it instead with --resume or Resume teaching)"
            )
        on_event(
            TeachEvent(
                "start", start, steps, message=f"{method.upper()} on {len(feedback_ids)} verdicts, {device}{again}"
            )
        )
    output = Path(output_dir) if output_dir else _new_folder(workspace, parent)
    work_dir = output.parent / f".{output.name}.work"
    losses: list[float] = list(saved.get("losses") or []) if saved else []
    margins: list[float] = list(saved.get("margins") or []) if saved else []
    progress = _Progress(on_event, cancellation, steps, losses, margins, offset=start)
    try:
        model, tokenizer = _train(
            base, parent, method, rows, work_dir, steps=steps, start=start, device=device, precision=precision,
            settings=settings, progress=progress, resume_from=checkpoint if saved else None,
        )  # fmt: skip
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if progress.stopped:
        save_stopped(
            checkpoint, model, progress.optimizer, progress.scheduler, progress.rng,
            {"fingerprint": fingerprint, "step": progress.step, "total_steps": steps, "losses": losses,
             "margins": margins, "device": device, "precision": precision},
        )  # fmt: skip
        raise CancelledError(
            f"Teaching stopped at step {progress.step} of {steps}; the twin is as it was, and resuming the Teach "
            "(--resume, or Resume in the app) goes on from there."
        )
    done_steps = steps
    pairs = preference_change(model, tokenizer, rows) if method == DPO else None
    lineage = {
        **{k: v for k, v in (read_lineage(parent) or {}).items() if k in ("base_model", "settings", "data_path")},
        "backend": "local",
        "base_model": base,
        "parent_adapter": str(parent),
        "method": method,
        "feedback_ids": feedback_ids,
        "steps": done_steps,
        "resumed_at_step": start or None,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "margins": margins,
        "edited_pairs": pairs,
        "learning_rate": settings["learning_rate"],
        "beta": beta,
        "device": device,
        "precision": precision,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }

    def write(folder: Path) -> None:
        model.save_pretrained(str(folder), selected_adapters=["default"], safe_serialization=True)
        (folder / "README.md").unlink(missing_ok=True)
        config_path = folder / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = parent_config.get("base_model_name_or_path")
        config["inference_mode"] = True
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        write_lineage(folder, lineage)

    write_dir_atomically(output, write)
    shutil.rmtree(checkpoint.folder, ignore_errors=True)  # a stopped run of this twin is now superseded
    workspace.register_adapter(output.name, output, lineage)
    if on_event:
        on_event(TeachEvent("done", done_steps, steps, losses[-1] if losses else None, message=str(output)))
    return TeachResult(output, parent, method, done_steps, feedback_ids, losses, margins, device, precision,
                       time.monotonic() - started, pairs)  # fmt: skip


def _train(base, parent: Path, method: str, rows, work_dir: Path, *, steps, start, device, precision, settings,
           progress: _Progress, resume_from=None):  # fmt: skip
    """The TRL run from step `start` to `steps`; the trained PeftModel (its "default" adapter is
    the new version). With `resume_from` (a checkpoint), its weights, optimizer, scheduler and
    random state are put back first."""
    import torch
    from datasets import Dataset
    from peft import PeftModel

    from cognitivetwin_core.models.loader import load_base_model
    from cognitivetwin_core.phase1.teach_checkpoint import ordered_rows, resume_callback

    seed = settings["seed"]
    torch.manual_seed(seed)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    base_weights, tokenizer = load_base_model(base, dtype=dtype, device=device)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = PeftModel.from_pretrained(base_weights, str(parent), is_trainable=True)
    common = dict(
        output_dir=str(work_dir),
        per_device_train_batch_size=BATCH_SIZE,
        max_steps=steps - start,
        learning_rate=settings["learning_rate"],
        lr_scheduler_type="constant",
        beta=settings["beta"],
        max_length=MAX_LENGTH,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=seed,
        bf16=precision == "bf16",
        fp16=False,
        use_cpu=device == "cpu",
        gradient_checkpointing=device != "cpu",
        dataloader_num_workers=0,
        train_sampling_strategy="sequential",  # the order is ordered_rows': the same when resumed
    )
    dataset = Dataset.from_list(ordered_rows(rows, steps, BATCH_SIZE, seed)[start * BATCH_SIZE :])
    if method == DPO:
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(**common, loss_type=["sigmoid", "sft"], loss_weights=[1.0, SFT_WEIGHT])
        trainer_class = DPOTrainer
    else:
        from trl import KTOConfig, KTOTrainer

        config = KTOConfig(**common)
        trainer_class = KTOTrainer
    callbacks = [progress.callback]
    if resume_from is not None:
        callbacks.append(resume_callback(resume_from))
    trainer = trainer_class(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks
    )
    # After the trainer kept its frozen copy of the parent ("ref"): the stopped run's weights.
    if resume_from is not None and not resume_from.restore_adapter(model):
        raise InputError(
            f"The stopped Teach in {resume_from.folder} does not fit this twin's adapter: teach again without "
            "resuming to start over."
        )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints every log to stdout; progress goes to on_event
    trainer.train()
    model = trainer.model
    model.eval()
    return model, tokenizer


def reply_log_probs(model, tokenizer, prompt: list[dict], replies: list[str]) -> list[float]:
    """log p(reply | prompt) of each reply under `model` (summed over the reply's tokens, its
    end-of-turn included), the prompt rendered with the chat template as Teach renders it."""
    import torch

    prefix = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    start = len(tokenizer(prefix, add_special_tokens=False)["input_ids"])
    device = next(model.parameters()).device
    values = []
    for reply in replies:
        text = tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": reply}], tokenize=False, add_generation_prompt=False
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        targets = ids[0, 1:]
        token_logps = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])[:, 0]
        values.append(float(token_logps[start - 1 :].sum()))
    return values


def preference_change(model, tokenizer, rows: list[dict]) -> dict | None:
    """On the DPO pairs: the mean log p(edit) − log p(twin's reply) under the frozen copy of the
    parent ("ref", as TRL keeps it) and under the taught adapter, and how many pairs rose (None
    when TRL kept no copy)."""
    if "ref" not in getattr(model, "peft_config", {}):
        return None
    before, after = [], []
    for adapter, gaps in (("ref", before), ("default", after)):
        model.set_adapter(adapter)
        for row in rows:
            chosen, rejected = reply_log_probs(
                model, tokenizer, row["prompt"], [row["chosen"][0]["content"], row["rejected"][0]["content"]]
            )
            gaps.append(chosen - rejected)
    model.set_adapter("default")
    return {
        "pairs": len(rows),
        "before": sum(before) / len(before),
        "after": sum(after) / len(after),
        "improved": sum(a > b for a, b in zip(after, before)),
    }
