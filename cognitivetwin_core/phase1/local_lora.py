"""Phase 1 on this computer: PEFT LoRA on the embedded or any local base.

`train_local_lora(data_path, base_model, output_dir, settings)` fine-tunes on the Phase 1
JSONL (the same file Together takes) and writes the same folder a Together download gives:
`adapter_config.json` + `adapter_model.safetensors` + `lineage.json`, so Phase 2 takes either.

- Each conversation is rendered with the base's own chat template; the loss is on the
  assistant turns only (their text and end-of-turn token). Which tokens those are is found
  by rendering each prefix of the conversation and mapping the character span of every
  assistant turn to tokens (offsets), so it works with any template, `{% generation %}`
  markers or not.
- Fast on a CPU: conversations are cut to `settings.max_seq_length` tokens, batched by
  length under a token budget (little padding), LoRA on q/v with a small rank by default,
  and the vocabulary projection is only computed at the positions that have a label.
- Progress: `on_event(LocalLoraEvent)` after every step (loss, step/total, tokens/s, ETA);
  `should_stop()` is checked between steps and ends the run with `CancelledError`.
- Checkpoints are written atomically (a temporary folder renamed into place) under
  `work_dir/checkpoint` every `checkpoint_every` steps and at each epoch end; a later run
  with the same data and settings resumes from it. The optimizer state is saved with
  `torch.save` and read back with `weights_only=True`; the adapter weights are safetensors.

`LocalLoraJobs(workspace)` is the `Phase1Backend` (see `phase1.py`) over it: `launch` starts
the training on a background thread and `poll`/`wait` report it, like a Together job.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.atomic_files import write_dir_atomically
from cognitivetwin_core.errors import CancelledError, CognitiveTwinError, InputError
from cognitivetwin_core.phase1.jobs import (
    DryRun,
    JobUpdate,
    Phase1Settings,
    ProgressCallback,
    read_chat_jsonl,
    validate_chat_jsonl,
)
from cognitivetwin_core.phase1.monitor import Backoff, follow

log = logging.getLogger(__name__)

LOCAL_DEFAULT_MODULES = ("q_proj", "v_proj")
LOCAL_DEFAULT_LEARNING_RATE = 5e-4  # few steps per epoch on small data; gradients are clipped
# Padded tokens a step: bounds activation memory (about 2.5 GB on the embedded model), and
# small data gets more optimizer steps per epoch (the demo: about 13 instead of 7 at 2048).
DEFAULT_BATCH_TOKENS = 1024
IGNORE_INDEX = -100


@dataclass
class LocalLoraEvent:
    kind: str  # "start", "step", "epoch", "checkpoint", "done"
    step: int
    total_steps: int
    epoch: int = 0
    loss: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None
    message: str = ""


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


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]

    @property
    def length(self) -> int:
        return len(self.input_ids)


# ----- data ---------------------------------------------------------------------------------


def _render(tokenizer, messages: list[dict], *, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_char_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    full = _render(tokenizer, messages)
    spans = []
    cursor = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        span = None
        try:
            before = _render(tokenizer, messages[:index], generation_prompt=True) if index else ""
            through = _render(tokenizer, messages[: index + 1])
            if full.startswith(through) and through.startswith(before) and len(through) > len(before):
                start = len(before)
                # Only the reply and its end-of-turn marker, not a next turn's header.
                span = (start, len(through))
        except Exception:  # templates that reject a prefix (e.g. one must end with a user turn)
            span = None
        if span is None:
            start = full.find(message["content"], cursor)
            if start < 0:
                continue
            span = (start, start + len(message["content"]))
        spans.append(span)
        cursor = span[1]
    return full, spans


def tokenize_conversation(tokenizer, messages: list[dict], max_length: int) -> TokenizedExample | None:
    """Token ids and labels (assistant tokens only, -100 elsewhere); None if nothing to learn."""
    text, spans = assistant_char_spans(tokenizer, messages)
    encoded = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=max_length
    )
    ids = encoded["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    span_index = 0
    for position, (start, end) in enumerate(encoded["offset_mapping"]):
        while span_index < len(spans) and spans[span_index][1] <= start:
            span_index += 1
        if span_index < len(spans) and end > start and spans[span_index][0] <= start < spans[span_index][1]:
            labels[position] = ids[position]
    if not any(label != IGNORE_INDEX for label in labels[1:]):
        return None
    return TokenizedExample(ids, labels)


def length_batches(examples: list[TokenizedExample], max_batch_tokens: int, seed: int) -> list[list[int]]:
    """Indices grouped by similar length, each batch under `max_batch_tokens` padded tokens."""
    order = sorted(range(len(examples)), key=lambda i: examples[i].length)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = examples[index].length
        if current and max(longest, length) * (len(current) + 1) > max_batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        batches.append(current)
    random.Random(seed).shuffle(batches)
    return batches


def _collate(examples: list[TokenizedExample], pad_id: int):
    import torch

    width = max(e.length for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        ids[row, : example.length] = torch.tensor(example.input_ids)
        labels[row, : example.length] = torch.tensor(example.labels)
        mask[row, : example.length] = 1
    return ids, labels, mask


def assistant_loss(model, input_ids, labels, attention_mask):
    """Mean next-token loss over labelled positions, projecting only those to the vocabulary."""
    import torch.nn.functional as F

    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal_lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep]), int(keep.sum())


def evaluate_loss(
    model,
    tokenizer,
    conversations: list[list[dict]],
    *,
    max_length: int = 512,
    max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
) -> float:
    """Mean assistant-token loss of `model` on `conversations` (no gradients)."""
    import torch

    examples = [e for e in (tokenize_conversation(tokenizer, c, max_length) for c in conversations) if e]
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in length_batches(examples, max_batch_tokens, seed=0):
            ids, labels, mask = _collate([examples[i] for i in batch], _pad_id(tokenizer))
            loss, n = assistant_loss(model, ids.to(model.device), labels.to(model.device), mask.to(model.device))
            total += float(loss) * n
            count += n
    return total / max(count, 1)


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


# ----- training -------------------------------------------------------------------------------


def _base_identity(base_model: str | Path) -> tuple[str, str]:
    """(name recorded in lineage, id written as base_model_name_or_path)."""
    from cognitivetwin_core.models.catalog import resolve_base

    resolved = resolve_base(base_model if isinstance(base_model, str) else str(base_model))
    if isinstance(resolved, Path):
        return str(resolved), str(resolved)
    return resolved.short_name, resolved.hf_repo


def train_local_lora(
    data_path: str | Path,
    base_model: str | Path,
    output_dir: str | Path,
    settings: Phase1Settings | None = None,
    *,
    work_dir: str | Path | None = None,
    on_event: Callable[[LocalLoraEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
    max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
    checkpoint_every: int = 50,
    seed: int = 0,
    resume: bool = True,
    lineage: dict | None = None,
) -> LocalLoraResult:
    """Train a LoRA adapter on the Phase 1 JSONL and save it to `output_dir` (atomically)."""
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    from cognitivetwin_core.models.loader import load_base_model
    from cognitivetwin_core.phase1.adapter_archive import write_lineage

    settings = settings or Phase1Settings(base_model=str(base_model), epochs=1)
    output_dir = Path(output_dir)
    work_dir = Path(work_dir) if work_dir else output_dir.parent / f".{output_dir.name}.work"
    conversations = read_chat_jsonl(data_path)
    data_sha = validate_chat_jsonl(data_path).sha256
    validation = read_chat_jsonl(settings.validation_file) if settings.validation_file else []
    validation_losses: list[float] = []
    base_name, base_id = _base_identity(base_model)
    started = time.monotonic()
    torch.manual_seed(seed)

    model, tokenizer = load_base_model(base_model, device=device)
    examples = [e for e in (tokenize_conversation(tokenizer, c, settings.max_seq_length) for c in conversations) if e]
    if not examples:
        raise InputError(
            f"No conversation in {data_path} has an assistant reply within the first "
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
    lora_config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=modules,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora_config)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    learning_rate = settings.learning_rate or LOCAL_DEFAULT_LEARNING_RATE
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.0)
    epochs = max(1, settings.epochs)
    per_epoch = [length_batches(examples, max_batch_tokens, seed + epoch) for epoch in range(epochs)]
    total_steps = sum(len(b) for b in per_epoch)
    if settings.max_steps:
        total_steps = min(total_steps, settings.max_steps)
    warmup = max(1, total_steps // 20)

    def lr_at(step: int) -> float:  # linear warmup, then linear decay to 10%
        if step < warmup:
            return learning_rate * (step + 1) / warmup
        return learning_rate * (1 - 0.9 * (step - warmup) / max(1, total_steps - warmup))

    fingerprint = {
        "data_sha256": data_sha,
        "base": base_name,
        "settings": settings.to_dict(),
        "seed": seed,
        "max_batch_tokens": max_batch_tokens,
    }
    step, losses, trained_tokens = 0, [], 0
    checkpoint = work_dir / "checkpoint"
    state_path = checkpoint / "trainer_state.json"
    if resume and state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("fingerprint") == fingerprint:
            set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter_model.safetensors")))
            optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
            step, losses, trained_tokens = state["step"], state["losses"], state["trained_tokens"]
            log.info("resuming local LoRA from step %d", step)

    def emit(kind: str, epoch: int, loss=None, tps=None, eta=None, message=""):
        if on_event:
            on_event(LocalLoraEvent(kind, step, total_steps, epoch, loss, tps, eta, message))

    def save_checkpoint() -> None:
        def write(folder: Path) -> None:
            from safetensors.torch import save_file

            weights = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(model).items()}
            save_file(weights, str(folder / "adapter_model.safetensors"))
            torch.save(optimizer.state_dict(), folder / "optimizer.pt")
            (folder / "trainer_state.json").write_text(
                json.dumps(
                    {"fingerprint": fingerprint, "step": step, "losses": losses, "trained_tokens": trained_tokens}
                )
            )

        write_dir_atomically(checkpoint, write)
        emit("checkpoint", epoch_index, message=str(checkpoint))

    emit("start", 0, message=f"{len(examples)} conversations, {total_steps} steps")
    pad = _pad_id(tokenizer)
    run_start_step, run_start_time = step, time.monotonic()
    done = 0  # batches accounted for, including those trained before a resumed checkpoint
    epoch_index = 0
    for epoch_index, batches in enumerate(per_epoch):
        for batch in batches:
            if done >= total_steps:
                break
            if done < step:  # already trained before the checkpoint we resumed from
                done += 1
                continue
            if should_stop and should_stop():
                save_checkpoint()
                raise CancelledError(
                    f"Local LoRA training stopped at step {step} of {total_steps}; "
                    "starting it again resumes from there."
                )
            ids, labels, mask = _collate([examples[i] for i in batch], pad)
            ids, labels, mask = ids.to(model.device), labels.to(model.device), mask.to(model.device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            loss, _ = assistant_loss(model, ids, labels, mask)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise CognitiveTwinError(
                    f"Local LoRA training diverged at step {step + 1} (the loss is "
                    f"{loss_value}): lower the learning rate and try again."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            step += 1
            done += 1
            trained_tokens += int(mask.sum())
            losses.append(round(loss_value, 5))
            elapsed = time.monotonic() - run_start_time
            rate = (step - run_start_step) / elapsed if elapsed > 0 else None
            eta = (total_steps - step) / rate if rate else None
            tps = trained_tokens / (time.monotonic() - started) if step else None
            emit("step", epoch_index, loss=loss_value, tps=tps, eta=eta)
            if checkpoint_every and step % checkpoint_every == 0 and step < total_steps:
                save_checkpoint()
        if done >= total_steps:
            break
        message = ""
        if validation:
            model.eval()
            validation_losses.append(
                round(
                    evaluate_loss(
                        model,
                        tokenizer,
                        validation,
                        max_length=settings.max_seq_length,
                        max_batch_tokens=max_batch_tokens,
                    ),
                    5,
                )
            )
            model.train()
            message = f"validation loss {validation_losses[-1]:.4f}"
        emit("epoch", epoch_index + 1, loss=losses[-1] if losses else None, message=message)

    def write_adapter(folder: Path) -> None:
        model.save_pretrained(str(folder), safe_serialization=True)
        (folder / "README.md").unlink(missing_ok=True)  # PEFT's model-card stub; not part of the layout
        config_path = folder / "adapter_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["base_model_name_or_path"] = base_id
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        write_lineage(
            folder,
            {
                "backend": "local",
                "base_model": base_name,
                "data_path": str(data_path),
                "data_sha256": data_sha,
                "settings": settings.to_dict(),
                "steps": step,
                "trained_tokens": trained_tokens,
                "first_loss": losses[0] if losses else None,
                "last_loss": losses[-1] if losses else None,
                "validation_losses": validation_losses,
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                **(lineage or {}),
            },
        )

    write_dir_atomically(output_dir, write_adapter)
    shutil.rmtree(work_dir, ignore_errors=True)
    emit("done", epochs, loss=losses[-1] if losses else None, message=str(output_dir))
    return LocalLoraResult(
        output_dir,
        step,
        epochs,
        len(examples),
        trained_tokens,
        losses[0] if losses else None,
        losses[-1] if losses else None,
        time.monotonic() - started,
        losses,
    )


# ----- the Phase 1 backend ---------------------------------------------------------------------


def _owner() -> dict:
    """This process, as recorded on a local job (pid plus start time, since pids are reused)."""
    import psutil

    return {"owner_pid": os.getpid(), "owner_started": psutil.Process().create_time()}


# Local jobs training in this process (any LocalLoraJobs instance), by id.
_RUNNING_HERE: set[str] = set()


def _owner_alive(record: dict) -> bool:
    import psutil

    pid = record.get("owner_pid")
    if pid == os.getpid():
        return record["job_id"] in _RUNNING_HERE
    if not pid:
        return False
    try:
        return abs(psutil.Process(pid).create_time() - float(record.get("owner_started") or 0)) < 1.0
    except (psutil.Error, ValueError):
        return False


class LocalLoraJobs:
    """Local LoRA runs as Phase 1 jobs in the workspace (see `phase1.py` for the interface)."""

    name = "local"

    def __init__(
        self,
        workspace,
        *,
        device: str | None = None,
        max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
        checkpoint_every: int = 50,
    ):
        self.workspace = workspace
        self.device = device
        self.max_batch_tokens = max_batch_tokens
        self.checkpoint_every = checkpoint_every
        self._threads: dict[str, threading.Thread] = {}
        self._stops: dict[str, threading.Event] = {}
        self._events: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        # A run that was going when its process ended did not finish: say so (its checkpoint
        # stays). A run another live process (the app, a CLI) is doing is left alone.
        for record in self.jobs():
            if record.get("status") in ("pending", "running") and not _owner_alive(record):
                self._store(
                    record["job_id"],
                    status="interrupted",
                    error="The app stopped during this local run; launch it again to resume from its last checkpoint.",
                )

    def _store(self, job_id: str, **fields) -> None:
        fields["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.workspace.upsert_phase1_job(job_id, fields)

    def _record(self, job_id: str) -> dict:
        record = self.workspace.get_phase1_job(job_id)
        if record is None or record.get("backend") != self.name:
            raise InputError(f"No local Phase 1 job {job_id} in this workspace: see `cognitivetwin phase1 --list`.")
        return record

    def jobs(self) -> list[dict]:
        return [r for r in self.workspace.phase1_jobs() if r.get("backend") == self.name]

    def unfinished_jobs(self) -> list[str]:
        return [r["job_id"] for r in self.jobs() if r.get("status") in ("pending", "running")]

    def dry_run(
        self, data_path: str | Path, settings: Phase1Settings, *, progress: ProgressCallback | None = None
    ) -> DryRun:
        from cognitivetwin_core.models.catalog import resolve_base

        try:
            resolved = resolve_base(settings.base_model)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        stats = validate_chat_jsonl(data_path)
        plan = DryRun(
            backend=self.name,
            settings=settings,
            data=stats,
            model_id=str(resolved) if isinstance(resolved, Path) else resolved.hf_repo,
        )
        if not isinstance(resolved, Path) and not resolved.local_available:
            plan.warnings.append(f"{resolved.display_name} must already be in the local Hugging Face cache")
        plan.estimated_tokens = stats.approx_tokens * max(1, settings.epochs)
        return plan

    def launch(self, plan: DryRun, *, job_id: str | None = None) -> str:
        """Start training on a background thread; return the job id at once."""
        if plan.backend != self.name:
            raise InputError("This plan was not made by a local dry run: run the local dry run first.")
        job_id = job_id or f"local-{uuid.uuid4().hex[:12]}"
        _RUNNING_HERE.add(job_id)  # before the record says "pending", so no other instance calls it dead
        adapter_id = job_id
        output_dir = Path(self.workspace.adapters_dir) / adapter_id
        work_dir = Path(self.workspace.runs_dir) / f"phase1-{job_id}"
        self._store(
            job_id,
            backend=self.name,
            status="pending",
            base_model=plan.settings.base_model,
            model_id=plan.model_id,
            suffix=plan.settings.suffix,
            data_path=plan.data.path,
            data_sha256=plan.data.sha256,
            settings=plan.settings.to_dict(),
            work_dir=str(work_dir),
            events=[],
            step=None,
            total_steps=None,
            **_owner(),
        )
        stop = threading.Event()
        with self._lock:
            self._stops[job_id] = stop
            self._events[job_id] = []

        def on_event(event: LocalLoraEvent) -> None:
            entry = {
                "type": event.kind,
                "step": event.step,
                "total_steps": event.total_steps,
                "epoch": event.epoch,
                "loss": event.loss,
                "eta_seconds": event.eta_seconds,
                "message": event.message,
            }
            with self._lock:
                self._events[job_id].append(entry)
            if event.kind in ("start", "epoch", "checkpoint", "done"):
                self._store(
                    job_id,
                    status="running",
                    step=event.step,
                    total_steps=event.total_steps,
                    eta_seconds=event.eta_seconds,
                    epochs_completed=event.epoch,
                )

        def run() -> None:
            try:
                train_local_lora(
                    plan.data.path,
                    plan.settings.base_model,
                    output_dir,
                    plan.settings,
                    work_dir=work_dir,
                    on_event=on_event,
                    should_stop=stop.is_set,
                    device=self.device,
                    max_batch_tokens=self.max_batch_tokens,
                    checkpoint_every=self.checkpoint_every,
                    lineage={"job_id": job_id},
                )
                lineage = json.loads((output_dir / "lineage.json").read_text(encoding="utf-8"))
                self.workspace.register_adapter(adapter_id, output_dir, lineage)
                self._store(
                    job_id,
                    status="completed",
                    adapter_id=adapter_id,
                    adapter_path=str(output_dir),
                    step=lineage.get("steps"),
                    eta_seconds=None,
                )
            except CancelledError as exc:
                self._store(job_id, status="cancelled", error=str(exc))
            except CognitiveTwinError as exc:
                self._store(job_id, status="error", error=str(exc))
            except Exception as exc:  # unexpected: logged in full, stored in plain words
                log.exception("local LoRA job %s failed", job_id)
                self._store(
                    job_id,
                    status="error",
                    error=f"Local training failed unexpectedly ({type(exc).__name__}: "
                    f"{exc}); see the log file for details.",
                )
            finally:
                _RUNNING_HERE.discard(job_id)

        thread = threading.Thread(target=run, name=f"local-lora-{job_id}", daemon=True)
        with self._lock:
            self._threads[job_id] = thread
        thread.start()
        return job_id

    def poll(self, job_id: str) -> JobUpdate:
        with self._lock:
            events = self._events.get(job_id, [])
            new, self._events[job_id] = list(events), []
        record = self._record(job_id)
        last = new[-1] if new else {}
        status = record.get("status", "pending")
        step = last.get("step", record.get("step"))
        if new:
            self._store(
                job_id,
                events=(list(record.get("events") or []) + [e for e in new if e["type"] != "step"])[-300:],
                step=step,
                total_steps=last.get("total_steps"),
                last_loss=last.get("loss"),
            )
        return JobUpdate(
            job_id,
            status,
            new_events=new,
            step=step,
            total_steps=last.get("total_steps", record.get("total_steps")),
            epochs_completed=record.get("epochs_completed"),
            eta_seconds=last.get("eta_seconds", record.get("eta_seconds")),
            adapter_path=record.get("adapter_path"),
            message=record.get("error", "") if status in ("error", "cancelled", "interrupted") else "",
        )

    def wait(
        self,
        job_id: str,
        *,
        on_update: Callable[[JobUpdate], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        interval: float = 0.5,
    ) -> JobUpdate:
        thread = self._threads.get(job_id)

        def pause(seconds: float) -> None:
            # Our own run: wake as soon as its thread ends; another process's: just wait.
            if thread is not None:
                thread.join(seconds)
            else:
                time.sleep(seconds)

        def relay(update: JobUpdate) -> None:
            if on_update and (update.new_events or update.terminal):
                on_update(update)

        return follow(
            lambda: self.poll(job_id),
            backoff=Backoff(base=interval, maximum=interval, idle_factor=1.0),
            on_update=relay,
            should_stop=should_stop,
            on_stop=lambda: self.cancel(job_id),
            sleep=pause,
        )

    def cancel(self, job_id: str) -> JobUpdate:
        record = self._record(job_id)
        stop = self._stops.get(job_id)
        if stop is None or record.get("status") not in ("pending", "running"):
            raise InputError(f"Local job {job_id} is {record.get('status')}; there is nothing to cancel here.")
        stop.set()
        return JobUpdate(job_id, "cancel_requested")

    def download(
        self,
        job_id: str,
        output_dir: str | Path | None = None,
        *,
        progress: ProgressCallback | None = None,
        overwrite: bool = False,
    ) -> Path:
        """The finished adapter's folder (copied to `output_dir` if given)."""
        record = self._record(job_id)
        if record.get("status") != "completed" or not record.get("adapter_path"):
            if job_id in self._threads:
                update = self.wait(job_id)
                record = self._record(job_id)
                if update.status != "completed":
                    raise InputError(f"Local job {job_id} ended {update.status}: {update.message}")
            else:
                raise InputError(f"Local job {job_id} is {record.get('status')}, not completed.")
        folder = Path(record["adapter_path"])
        if output_dir:
            from cognitivetwin_core.output_dirs import check_adapter_output

            check_adapter_output(output_dir, overwrite=overwrite)
            target = Path(output_dir)
            write_dir_atomically(target, lambda tmp: shutil.copytree(folder, tmp, dirs_exist_ok=True))
            return target
        return folder
