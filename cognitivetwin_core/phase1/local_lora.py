"""Phase 1 on this computer: PEFT LoRA on the embedded or any local base.

`train_local_lora(data_path, base_model, output_dir, settings)` (a `LocalLoraRun`: prepare,
resume, step, save, finish) fine-tunes on the Phase 1
JSONL (the same file Together takes) and writes the same folder a Together download gives:
`adapter_config.json` + `adapter_model.safetensors` + `lineage.json`, so Phase 2 takes either.

- Tokenising and batching: phase1/assistant_tokens.py; device, precision and memory
  planning: phase1/lora_device_plan.py; the jobs backend over runs: phase1/local_jobs.py.
- Fast on a CPU: conversations are cut to `settings.max_seq_length` tokens, batched by
  length under a token budget (little padding), LoRA on q/v with a small rank by default,
  and the vocabulary projection is only computed at the positions that have a label.
- On a GPU (`device`, chosen as Phase 2 chooses it: models/devices.py): bf16 weights under
  bf16 autocast where the GPU does bf16 natively, gradient checkpointing, and tokens per
  step sized to free memory. The memory check of models/memory.py runs before loading.
- LoRA wraps the language model's modules only: an image-text base (Gemma 3 4B) is loaded
  as its text model alone (models/loader.py), so no vision tower is loaded or wrapped.
- Progress: `on_event(TrainingEvent)` (phase1/training_progress.py) after every step (loss, step/total, tokens/s, ETA);
  its `cancellation` (cognitivetwin_core/cancellation.py) is checked between steps and ends
  the run with `CancelledError` after a checkpoint.
- Out of memory mid-run (docs/gpu.md): the step's tensors are freed and the step is retried
  with its batch cut into pieces of half the tokens, whose gradients are summed before the
  one optimizer step (so each step learns from the same conversations as before); a
  "memory" event says so. Below `MIN_STEP_TOKENS`, or with one conversation a piece, the run
  keeps its progress in a checkpoint and ends with `LocalLoraOutOfMemoryError`.
- Checkpoints (phase1/training_checkpoint.py) are written atomically under
  `work_dir/checkpoint` every `checkpoint_every` steps and at each epoch end; a later run
  with the same data and settings resumes from it, on any device.
- The measured tokens/s of a finished run is kept in its job record and lineage
  (phase1/throughput.py turns it into the next run's time estimate).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.atomic_files import write_dir_atomically
from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CancelledError, CognitiveTwinError, InputError
from cognitivetwin_core.models.training import lr_factor, warmup_steps
from cognitivetwin_core.phase1.assistant_tokens import (
    DEFAULT_BATCH_TOKENS,
    TokenizedExample,
    assistant_loss,
    collate,
    evaluate_loss,
    length_batches,
    pad_id,
    tokenize_conversation,
)
from cognitivetwin_core.phase1.jobs import Phase1Settings, read_chat_jsonl, validate_chat_jsonl
from cognitivetwin_core.phase1.lora_device_plan import (
    LOCAL_DEFAULT_MODULES,
    auto_batch_tokens,
    enable_gradient_checkpointing,
    language_model_targets,
    plan_device,
    require_lora_memory,
)
from cognitivetwin_core.phase1.training_checkpoint import TrainingCheckpoint
from cognitivetwin_core.phase1.training_progress import StepClock, TrainingEvent

log = logging.getLogger(__name__)


LOCAL_DEFAULT_LEARNING_RATE = 5e-4  # few steps per epoch on small data; gradients are clipped
# After an out-of-memory error a step is retried in pieces of half the tokens, down to this:
# below it the device is too small for this base and these settings.
MIN_STEP_TOKENS = 128


class LocalLoraOutOfMemoryError(CognitiveTwinError):
    """Out of memory even in the smallest pieces a step can be cut into."""


@dataclass
class LocalLoraResult:
    adapter_dir: Path
    steps: int
    epochs: int
    examples: int
    trained_tokens: int
    first_loss: float | None
    last_loss: float | None
    seconds: float
    losses: list[float] = field(default_factory=list)
    device: str = "cpu"
    precision: str = "fp32"
    tokens_per_second: float | None = None  # measured over training steps, loading excluded
    step_tokens: int | None = None  # padded tokens a forward pass at the end (below max_batch_tokens after OOM)
    oom_retries: int = 0


def _base_identity(base_model: str | Path) -> tuple[str, str]:
    """(name recorded in lineage, id written as base_model_name_or_path)."""
    from cognitivetwin_core.models.catalog import resolve_base

    resolved = resolve_base(base_model if isinstance(base_model, str) else str(base_model))
    if isinstance(resolved, Path):
        return str(resolved), str(resolved)
    return resolved.short_name, resolved.hf_repo


class LocalLoraRun:
    """One local LoRA training run, in the steps a caller (or a test) can take one by one:

    `prepare()` (device, memory check, model, data, optimizer), `resume()` (from the work
    folder's checkpoint when its fingerprint matches), `step(batch)` (one optimizer step),
    `save()` (an atomic checkpoint), `finish()` (the adapter folder). `run()` does them all.
    """

    def __init__(
        self,
        data_path: str | Path,
        base_model: str | Path,
        output_dir: str | Path,
        settings: Phase1Settings | None = None,
        *,
        work_dir: str | Path | None = None,
        on_event: Callable[[TrainingEvent], None] | None = None,
        cancellation: Cancellation | None = None,
        device: str | None = "auto",
        precision: str | None = "auto",
        gradient_checkpointing: bool | None = None,
        max_batch_tokens: int | None = DEFAULT_BATCH_TOKENS,
        checkpoint_every: int = 50,
        seed: int = 0,
        resume: bool = True,
        lineage: dict | None = None,
        check_memory: bool = True,
    ):
        self.data_path = data_path
        self.base_model = base_model
        self.output_dir = Path(output_dir)
        self.settings = settings or Phase1Settings(base_model=str(base_model), epochs=1)
        self.work_dir = Path(work_dir) if work_dir else self.output_dir.parent / f".{self.output_dir.name}.work"
        self.on_event = on_event
        self.cancellation = cancellation or Cancellation()
        self.requested_device = device
        self.requested_precision = precision
        self.gradient_checkpointing = gradient_checkpointing
        self.max_batch_tokens = max_batch_tokens  # None: sized to the device's memory
        self.checkpoint_every = checkpoint_every
        self.seed = seed
        self.checkpoint = TrainingCheckpoint(self.work_dir / "checkpoint", enabled=resume)
        self.extra_lineage = lineage or {}
        self.check_memory = check_memory
        self.step_index = 0  # optimizer steps done, including those before a resume
        self.losses: list[float] = []
        self.validation_losses: list[float] = []
        self.trained_tokens = 0
        self.epoch_index = 0
        self.step_tokens: int | None = None  # padded tokens a forward pass (halved on OOM)
        self.oom_retries = 0
        self._saved_step: int | None = None  # the step of the last checkpoint written or resumed
        self._run_tokens = 0  # tokens trained by this process (for its throughput)
        self._train_seconds = 0.0
        self._started = time.monotonic()

    @property
    def checkpoint_dir(self) -> Path:
        return self.checkpoint.folder

    def _emit(self, kind: str, epoch: int, loss=None, tps=None, eta=None, message="") -> None:
        if self.on_event:
            self.on_event(TrainingEvent(kind, self.step_index, self.total_steps, epoch, loss, tps, eta, message))

    # --- prepare ----------------------------------------------------------------------------

    def prepare(self) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        from cognitivetwin_core.models.loader import load_base_model

        settings = self.settings
        self.plan = plan_device(self.requested_device, self.requested_precision, self.gradient_checkpointing)
        self.device, self.precision = self.plan.device, self.plan.precision
        self.gradient_checkpointing = self.plan.gradient_checkpointing
        self.conversations = read_chat_jsonl(self.data_path)
        self.data_sha = validate_chat_jsonl(self.data_path).sha256
        self.validation = read_chat_jsonl(settings.validation_file) if settings.validation_file else []
        self.base_name, self.base_id = _base_identity(self.base_model)
        if self.check_memory:
            require_lora_memory(self.base_model, settings, self.plan, self.max_batch_tokens)
        torch.manual_seed(self.seed)
        model, self.tokenizer = load_base_model(self.base_model, dtype=self.plan.dtype, device=self.device)
        self.examples = [
            e
            for e in (tokenize_conversation(self.tokenizer, c, settings.max_seq_length) for c in self.conversations)
            if e
        ]
        if not self.examples:
            raise InputError(
                f"No conversation in {self.data_path} has an assistant reply within the first "
                f"{settings.max_seq_length} tokens: raise the maximum length or check the data."
            )
        modules = list(settings.target_modules or LOCAL_DEFAULT_MODULES)
        available = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [m for m in modules if m not in available]
        if missing:
            raise InputError(
                f"The base model has no modules named {', '.join(missing)}: choose target modules "
                f"among q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj."
            )
        if self.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        lora_config = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=language_model_targets(model, modules),
            task_type="CAUSAL_LM",
        )
        # PEFT keeps the adapter weights in float32 over bf16 base weights (autocast_adapter_dtype).
        self.model = get_peft_model(model, lora_config)
        self.model.train()
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.learning_rate = settings.learning_rate or LOCAL_DEFAULT_LEARNING_RATE
        self.optimizer = torch.optim.AdamW(self.trainable, lr=self.learning_rate, weight_decay=0.0)
        self.batch_tokens = self._batch_tokens()
        self.step_tokens = self.batch_tokens
        epochs = max(1, settings.epochs)
        self.per_epoch = [length_batches(self.examples, self.batch_tokens, self.seed + e) for e in range(epochs)]
        total = sum(len(b) for b in self.per_epoch)
        self.total_steps = min(total, settings.max_steps) if settings.max_steps else total
        self.warmup = warmup_steps(self.total_steps, 0.05)
        self.fingerprint = {
            "data_sha256": self.data_sha,
            "base": self.base_name,
            "settings": settings.to_dict(),
            "seed": self.seed,
            "max_batch_tokens": self.batch_tokens,
        }
        self.pad_id = pad_id(self.tokenizer)

    def _batch_tokens(self) -> int:
        if self.max_batch_tokens:
            return int(self.max_batch_tokens)
        # Sized to memory: but a run resumed on another device keeps its batches (and so its
        # fingerprint and data order), whatever this device would have chosen.
        saved = self.checkpoint.state()
        if saved and saved.get("fingerprint", {}).get("max_batch_tokens"):
            return int(saved["fingerprint"]["max_batch_tokens"])
        return auto_batch_tokens(
            self.model, self.device, max_length=self.settings.max_seq_length, precision=self.precision
        )

    # --- resume / save ----------------------------------------------------------------------

    def resume(self) -> bool:
        """Continue from the checkpoint when it was made with the same data and settings
        (on any device or precision: tensors are read onto the CPU, then copied into place)."""
        state = self.checkpoint.matching_state(self.fingerprint)
        if state is None or not self.checkpoint.restore_adapter(self.model):
            return False
        self.checkpoint.load_optimizer(self.optimizer)
        self.step_index, self.losses = int(state["step"]), list(state["losses"])
        self.trained_tokens = int(state["trained_tokens"])
        self._saved_step = self.step_index
        # On the device that ran out of memory, start from the pieces that fitted there (outside
        # the fingerprint: the batches, and so the steps, are the same either way).
        saved_tokens = state.get("step_tokens")
        if state.get("device") == self.device and isinstance(saved_tokens, int) and saved_tokens < self.step_tokens:
            self.step_tokens = max(MIN_STEP_TOKENS, saved_tokens)
        log.info("resuming local LoRA from step %d on %s", self.step_index, self.device)
        return True

    def save(self) -> Path:
        """Write the checkpoint atomically: adapter weights (safetensors), optimizer, state."""
        from peft import get_peft_model_state_dict

        state = {
            "fingerprint": self.fingerprint,
            "step": self.step_index,
            "losses": self.losses,
            "trained_tokens": self.trained_tokens,
            "device": self.device,
            "precision": self.precision,
            "step_tokens": self.step_tokens,
        }
        self.checkpoint.write(get_peft_model_state_dict(self.model), self.optimizer, state)
        self._saved_step = self.step_index
        self._emit("checkpoint", self.epoch_index, message=str(self.checkpoint_dir))
        return self.checkpoint_dir

    # --- step -------------------------------------------------------------------------------

    def step(self, batch: list[int]) -> float:
        """One optimizer step on the examples at `batch`; returns its loss.

        The gradient is summed over pieces of the batch of at most `step_tokens` padded tokens
        (one piece until memory runs out), each weighted by its share of the labelled tokens:
        the same gradient, and the same step, as the whole batch in one pass.
        """
        import torch

        from cognitivetwin_core.models.devices import is_out_of_memory

        factor = lr_factor(self.step_index, self.total_steps, self.warmup, decay="linear")
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate * factor
        started = time.monotonic()
        while True:
            try:
                loss_value, tokens = self._gradients(batch)
                break
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
            # Here, outside the handler, the error and the tensors its frames held are gone.
            self._recover_from_oom([self.examples[i] for i in batch])
        try:
            torch.nn.utils.clip_grad_norm_(self.trainable, 1.0)
            self.optimizer.step()
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            # Some weights may already have moved: this step can be neither tried again nor saved.
            self._give_up_on_memory(save=False)
        self._train_seconds += time.monotonic() - started
        self._run_tokens += tokens
        self.step_index += 1
        self.trained_tokens += tokens
        self.losses.append(round(loss_value, 5))
        return loss_value

    def _gradients(self, batch: list[int]) -> tuple[float, int]:
        """Forward and backward passes over `batch` in pieces; (its mean loss, its tokens)."""
        examples = [self.examples[i] for i in batch]
        pieces = [list(range(len(examples)))]
        if self.step_tokens < self.batch_tokens and len(examples) > 1:
            pieces = length_batches(examples, self.step_tokens, seed=0)
        self.optimizer.zero_grad(set_to_none=True)
        return backward_in_pieces(self.model, examples, pieces, self.pad_id, self.plan, self.step_index + 1)

    def _free_memory(self) -> None:
        import gc

        import torch

        self.optimizer.zero_grad(set_to_none=True)  # a failed attempt's partial gradients
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def _recover_from_oom(self, examples: list[TokenizedExample] | None) -> None:
        """After an out-of-memory error: free memory and halve the tokens a piece, or give up
        (when that would go below MIN_STEP_TOKENS, or each piece is already one conversation)."""
        self._free_memory()
        smaller = self.step_tokens // 2
        alone = bool(examples) and all(len(p) == 1 for p in length_batches(examples, self.step_tokens, seed=0))
        if smaller < MIN_STEP_TOKENS or alone:
            self._give_up_on_memory()
        log.warning(
            "local LoRA: out of memory on %s before step %d; retrying in pieces of %d tokens (was %d)",
            self.device,
            self.step_index + 1,
            smaller,
            self.step_tokens,
        )
        previous, self.step_tokens = self.step_tokens, smaller
        self.oom_retries += 1
        self._emit(
            "memory",
            self.epoch_index,
            message=f"Out of memory on {self.device}: this step is tried again in pieces of at most "
            f"{smaller:,} tokens (was {previous:,}); each step still learns from the same conversations.",
        )

    def _give_up_on_memory(self, *, save: bool = True):
        """Keep the progress made (a checkpoint, if there is any new) and end with one sentence."""
        self._free_memory()
        if save and self.step_index and self._saved_step != self.step_index:
            try:
                self.save()
            except Exception:  # the sentence below matters more than this checkpoint
                log.exception("local LoRA: could not save a checkpoint after running out of memory")
        raise LocalLoraOutOfMemoryError(
            out_of_memory_message(self.device, self.step_tokens, self.settings, self._saved_step)
        )

    @property
    def tokens_per_second(self) -> float | None:
        """Trained tokens a second of training in this process (loading excluded)."""
        return self._run_tokens / self._train_seconds if self._train_seconds > 0 else None

    # --- the whole run ----------------------------------------------------------------------

    def run(self) -> LocalLoraResult:
        self.prepare()
        self.resume()
        self._emit(
            "start",
            0,
            message=f"{len(self.examples)} conversations, {self.total_steps} steps on {self.device} "
            f"({self.precision}{', gradient checkpointing' if self.gradient_checkpointing else ''})",
        )
        clock = StepClock(self.step_index, self.total_steps)
        done = 0  # batches accounted for, including those trained before a resumed checkpoint
        for epoch_index, batches in enumerate(self.per_epoch):
            self.epoch_index = epoch_index
            for batch in batches:
                if done >= self.total_steps:
                    break
                if done < self.step_index:  # already trained before the checkpoint we resumed from
                    done += 1
                    continue
                if self.cancellation.cancelled:
                    self.save()
                    raise CancelledError(
                        f"Local LoRA training stopped at step {self.step_index} of {self.total_steps}; "
                        "starting it again resumes from there."
                    )
                loss_value = self.step(batch)
                done += 1
                eta = clock.eta_seconds(self.step_index)
                self._emit("step", self.epoch_index, loss=loss_value, tps=self.tokens_per_second, eta=eta)
                if (
                    self.checkpoint_every
                    and self.step_index % self.checkpoint_every == 0
                    and self.step_index < self.total_steps
                ):
                    self.save()
            if done >= self.total_steps:
                break
            self._end_epoch()
        return self.finish()

    def _end_epoch(self) -> None:
        message = ""
        if self.validation:
            self.model.eval()
            loss = self._validation_loss()
            self.validation_losses.append(round(loss, 5))
            self.model.train()
            message = f"validation loss {self.validation_losses[-1]:.4f}"
        self._emit("epoch", self.epoch_index + 1, loss=self.losses[-1] if self.losses else None, message=message)

    def _validation_loss(self) -> float:
        """The validation loss, in pieces as small as training's; halved again on out-of-memory."""
        from cognitivetwin_core.models.devices import is_out_of_memory

        while True:
            try:
                with self.plan.autocast():
                    return evaluate_loss(
                        self.model,
                        self.tokenizer,
                        self.validation,
                        max_length=self.settings.max_seq_length,
                        max_batch_tokens=self.step_tokens,
                    )
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
            self._recover_from_oom(None)

    def finish(self) -> LocalLoraResult:
        """Write the adapter folder (atomically), remove the work folder, report."""
        from cognitivetwin_core.phase1.adapter_archive import loss_curve_points

        losses = self.losses
        lineage = {
            "backend": "local",
            "base_model": self.base_name,
            "data_path": str(self.data_path),
            "data_sha256": self.data_sha,
            "settings": self.settings.to_dict(),
            "steps": self.step_index,
            "trained_tokens": self.trained_tokens,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "validation_losses": self.validation_losses,
            # The curve, so the app can draw a finished run again after a restart.
            "loss_curve": loss_curve_points(losses),
            "device": self.device,
            "precision": self.precision,
            "max_batch_tokens": self.batch_tokens,
            "tokens_per_second": round(self.tokens_per_second, 2) if self.tokens_per_second else None,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **self.extra_lineage,
        }
        save_adapter_folder(self.model, self.output_dir, self.base_id, lineage)
        shutil.rmtree(self.work_dir, ignore_errors=True)
        epochs = max(1, self.settings.epochs)
        self._emit("done", epochs, loss=losses[-1] if losses else None, message=str(self.output_dir))
        return LocalLoraResult(
            self.output_dir,
            self.step_index,
            epochs,
            len(self.examples),
            self.trained_tokens,
            losses[0] if losses else None,
            losses[-1] if losses else None,
            time.monotonic() - self._started,
            losses,
            device=self.device,
            precision=self.precision,
            tokens_per_second=self.tokens_per_second,
            step_tokens=self.step_tokens,
            oom_retries=self.oom_retries,
        )


def backward_in_pieces(model, examples, pieces, pad_token: int, plan, step_number: int) -> tuple[float, int]:
    """Gradients of the assistant loss over `examples`, one forward and backward pass a piece
    (lists of indices), each weighted by its share of the labelled tokens: the same gradient
    as one pass over them all. Returns (the mean loss, the padded tokens)."""
    labelled = sum(e.labelled for e in examples)
    device = model.device
    weighted_loss, tokens = 0.0, 0
    for piece in pieces:
        ids, labels, mask = collate([examples[i] for i in piece], pad_token)
        ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
        with plan.autocast():
            loss, count = assistant_loss(model, ids, labels, mask)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise CognitiveTwinError(
                f"Local LoRA training diverged at step {step_number} (the loss is "
                f"{loss_value}): lower the learning rate and try again."
            )
        if len(pieces) == 1:
            loss.backward()
            return loss_value, int(mask.sum())
        (loss * (count / labelled)).backward()
        weighted_loss += loss_value * count
        tokens += int(mask.sum())
        del ids, labels, mask, loss
    return weighted_loss / labelled, tokens


def out_of_memory_message(device: str, step_tokens: int, settings: Phase1Settings, saved_step: int | None) -> str:
    """The sentence a run ends with when even its smallest pieces do not fit."""
    on_cpu = device == "cpu"
    kept = ""
    if saved_step:
        where = "" if on_cpu else " (on the CPU, say)"
        kept = (
            f"; its first {saved_step} steps are kept: starting it again with the same settings{where} resumes "
            "from there"
        )
    last = "close other programs to free memory" if on_cpu else "train on the CPU"
    return (
        f"Out of memory on {device} even in pieces of {step_tokens:,} tokens: lower the LoRA rank "
        f"(now {settings.lora_r}) or the maximum sequence length (now {settings.max_seq_length}), "
        f"pick a smaller base, or {last}{kept}."
    )


def save_adapter_folder(model, output_dir: Path, base_id: str, lineage: dict) -> None:
    """The trained adapter as the layout Phase 2 takes (the same as a Together download):
    `adapter_config.json` naming `base_id`, `adapter_model.safetensors` and `lineage.json`,
    written atomically."""
    from cognitivetwin_core.phase1.adapter_archive import write_lineage

    def write_adapter(folder: Path) -> None:
        model.save_pretrained(str(folder), safe_serialization=True)
        (folder / "README.md").unlink(missing_ok=True)  # PEFT's model-card stub; not part of the layout
        config_path = folder / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = base_id
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        write_lineage(folder, lineage)

    write_dir_atomically(output_dir, write_adapter)


def train_local_lora(
    data_path: str | Path,
    base_model: str | Path,
    output_dir: str | Path,
    settings: Phase1Settings | None = None,
    **options,
) -> LocalLoraResult:
    """Train a LoRA adapter on the Phase 1 JSONL and save it to `output_dir` (atomically).

    Options as `LocalLoraRun` (device, precision, max_batch_tokens, work_dir, on_event, ...).
    """
    return LocalLoraRun(data_path, base_model, output_dir, settings, **options).run()
