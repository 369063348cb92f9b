"""Phase 1 on this computer: PEFT LoRA on the embedded or any local base.

`train_local_lora(data_path, base_model, output_dir, settings)` (a `LocalLoraRun`: prepare,
resume, step, save, finish) fine-tunes on the Phase 1
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
- On a GPU (`device`, chosen as Phase 2 chooses it: models/devices.py): bf16 weights under
  bf16 autocast where the GPU does bf16 natively, gradient checkpointing, and tokens per
  step sized to free memory. The memory check of models/memory.py runs before loading.
- LoRA wraps the language model's modules only: an image-text base (Gemma 3 4B) is loaded
  as its text model alone (models/loader.py), so no vision tower is loaded or wrapped.
- Progress: `on_event(LocalLoraEvent)` after every step (loss, step/total, tokens/s, ETA);
  `should_stop()` is checked between steps and ends the run with `CancelledError`.
- Out of memory mid-run (docs/gpu.md): the step's tensors are freed and the step is retried
  with its batch cut into pieces of half the tokens, whose gradients are summed before the
  one optimizer step (so each step learns from the same conversations as before); a
  "memory" event says so. Below `MIN_STEP_TOKENS`, or with one conversation a piece, the run
  keeps its progress in a checkpoint and ends with `LocalLoraOutOfMemoryError`.
- Checkpoints are written atomically (a temporary folder renamed into place) under
  `work_dir/checkpoint` every `checkpoint_every` steps and at each epoch end; a later run
  with the same data and settings resumes from it, on any device. The optimizer state is
  saved from the CPU with `torch.save` and read back with `map_location="cpu",
  weights_only=True`; the adapter weights are safetensors.
- The measured tokens/s of a finished run is kept in its job record and lineage
  (phase1/throughput.py turns it into the next run's time estimate).

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
from cognitivetwin_core.models.training import fingerprint_changes, lr_factor, warmup_steps
from cognitivetwin_core.phase1.jobs import (
    DryRun,
    JobRecord,
    JobUpdate,
    Phase1Settings,
    ProgressCallback,
    read_chat_jsonl,
    read_job,
    read_jobs,
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
# After an out-of-memory error a step is retried in pieces of half the tokens, down to this:
# below it the device is too small for this base and these settings.
MIN_STEP_TOKENS = 128


class LocalLoraOutOfMemoryError(CognitiveTwinError):
    """Out of memory even in the smallest pieces a step can be cut into."""


@dataclass
class LocalLoraEvent:
    kind: str  # "start", "step", "memory" (out of memory: retrying smaller), "epoch", "checkpoint", "done"
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
    device: str = "cpu"
    precision: str = "fp32"
    tokens_per_second: float | None = None  # measured over training steps, loading excluded
    step_tokens: int | None = None  # padded tokens a forward pass at the end (below max_batch_tokens after OOM)
    oom_retries: int = 0


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]

    @property
    def length(self) -> int:
        return len(self.input_ids)

    @property
    def labelled(self) -> int:
        """Positions the loss counts (as `assistant_loss` counts them: the first token never)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


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
    hidden = causal_lm.get_decoder()(
        input_ids=input_ids, attention_mask=attention_mask, use_cache=False
    ).last_hidden_state
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

PRECISIONS = ("auto", "fp32", "bf16")


def _base_identity(base_model: str | Path) -> tuple[str, str]:
    """(name recorded in lineage, id written as base_model_name_or_path)."""
    from cognitivetwin_core.models.catalog import resolve_base

    resolved = resolve_base(base_model if isinstance(base_model, str) else str(base_model))
    if isinstance(resolved, Path):
        return str(resolved), str(resolved)
    return resolved.short_name, resolved.hf_repo


def choose_precision(device: str, requested: str | None = "auto") -> str:
    """ "bf16" (bf16 weights, bf16 autocast) or "fp32" for `device`.

    auto: bf16 on a GPU that does it natively (compute capability 8.0+), fp32 elsewhere: on
    the CPU bf16 matmuls are slower than fp32 on most processors. "bf16" may be asked for on the CPU (autocast works there too).
    """
    import torch

    from cognitivetwin_core.models.devices import working_dtype

    requested = (requested or "auto").lower()
    if requested not in PRECISIONS:
        raise InputError(f"Unknown precision {requested!r}: use one of {', '.join(PRECISIONS)}.")
    if requested != "auto":
        return requested
    # Phase 2's choice (compute capability 8.0+), without fp16: training in it needs loss scaling.
    return "bf16" if working_dtype(device) == torch.bfloat16 else "fp32"


def language_model_targets(model, modules: list[str]) -> list[str] | str:
    """PEFT `target_modules` that reach the language model only.

    A text-only model: the short names as given. A model with other towers (Gemma 3's
    vision tower and projector share names such as q_proj): a regex anchored on the
    language model's own path, so nothing outside it is wrapped.
    """
    import re

    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    prefix = next((name for name, module in model.named_modules() if module is decoder), None)
    towers = [n for n, _ in model.named_modules() if n and ("vision" in n or "multi_modal" in n)]
    if not towers or not prefix:
        return modules
    names = "|".join(re.escape(m) for m in modules)
    return rf"{re.escape(prefix)}\..*\.({names})"


def auto_batch_tokens(model, device: str, *, max_length: int, precision: str) -> int:
    """Padded tokens a step: the CPU default, or on a GPU the most its free memory holds.

    Tried from 16k down to 1k tokens with the memory model of models/memory.py, against
    the GPU memory free once the weights are loaded (80% of it, for the allocator).
    """
    if not device.startswith("cuda"):
        return DEFAULT_BATCH_TOKENS
    from cognitivetwin_core.models.memory import ModelShape, estimate_memory, free_memory

    shape = ModelShape.from_config(model.config.to_dict())
    _ram, free = free_memory(device)
    for tokens in (16384, 8192, 4096, 2048):
        need = estimate_memory(
            shape, purpose="lora", device=device, dtype="bfloat16" if precision == "bf16" else "float32"
        ).working
        need = need * tokens // DEFAULT_BATCH_TOKENS
        if tokens >= max_length and need < 0.8 * (free or 0):
            return tokens
    return DEFAULT_BATCH_TOKENS


def local_memory_verdict(
    base_model: str | Path,
    settings: Phase1Settings | None = None,
    *,
    device: str | None = "auto",
    precision: str | None = "auto",
    max_batch_tokens: int | None = None,
    **free,
):
    """Whether local LoRA on `base_model` fits on `device` (a `MemoryVerdict`, whose text
    the CLI prints and the app shows before Start); `free` may inject free_ram/free_device."""
    from cognitivetwin_core.models.devices import select_device
    from cognitivetwin_core.models.memory import check_memory

    settings = settings or Phase1Settings(base_model=str(base_model))
    device = select_device(device)
    precision = choose_precision(device, precision)
    return check_memory(
        base_model,
        purpose="lora",
        device=device,
        dtype="bfloat16" if precision == "bf16" else "float32",
        batch_tokens=max_batch_tokens or DEFAULT_BATCH_TOKENS,
        lora_rank=settings.lora_r,
        lora_modules=len(settings.target_modules or LOCAL_DEFAULT_MODULES),
        gradient_checkpointing=device != "cpu",
        **free,
    )


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
        on_event: Callable[[LocalLoraEvent], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
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
        self.should_stop = should_stop
        self.requested_device = device
        self.requested_precision = precision
        self.gradient_checkpointing = gradient_checkpointing
        self.max_batch_tokens = max_batch_tokens  # None: sized to the device's memory
        self.checkpoint_every = checkpoint_every
        self.seed = seed
        self.allow_resume = resume
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
        return self.work_dir / "checkpoint"

    def _emit(self, kind: str, epoch: int, loss=None, tps=None, eta=None, message="") -> None:
        if self.on_event:
            self.on_event(LocalLoraEvent(kind, self.step_index, self.total_steps, epoch, loss, tps, eta, message))

    # --- prepare ----------------------------------------------------------------------------

    def prepare(self) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        from cognitivetwin_core.models.devices import select_device
        from cognitivetwin_core.models.loader import load_base_model

        settings = self.settings
        self.device = select_device(self.requested_device)
        self.precision = choose_precision(self.device, self.requested_precision)
        if self.gradient_checkpointing is None:  # memory is scarce on accelerators; the CPU has RAM
            self.gradient_checkpointing = self.device != "cpu"
        self.conversations = read_chat_jsonl(self.data_path)
        self.data_sha = validate_chat_jsonl(self.data_path).sha256
        self.validation = read_chat_jsonl(settings.validation_file) if settings.validation_file else []
        self.base_name, self.base_id = _base_identity(self.base_model)
        if self.check_memory:
            self._check_memory()
        torch.manual_seed(self.seed)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        model, self.tokenizer = load_base_model(self.base_model, dtype=dtype, device=self.device)
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
            # Non-reentrant: works with frozen inputs, so no input-grad hook is needed.
            enable = getattr(model, "activation_checkpointing_enable", None)  # transformers 5's name
            if enable is not None:
                enable({"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
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
        self.pad_id = _pad_id(self.tokenizer)

    def _check_memory(self) -> None:
        from cognitivetwin_core.models.memory import require_memory

        require_memory(
            self.base_model,
            purpose="lora",
            device=self.device,
            dtype="bfloat16" if self.precision == "bf16" else "float32",
            batch_tokens=self.max_batch_tokens or DEFAULT_BATCH_TOKENS,
            lora_rank=self.settings.lora_r,
            lora_modules=len(self.settings.target_modules or LOCAL_DEFAULT_MODULES),
            gradient_checkpointing=bool(self.gradient_checkpointing),
        )

    def _batch_tokens(self) -> int:
        if self.max_batch_tokens:
            return int(self.max_batch_tokens)
        # Sized to memory: but a run resumed on another device keeps its batches (and so its
        # fingerprint and data order), whatever this device would have chosen.
        saved = self._saved_state()
        if saved and saved.get("fingerprint", {}).get("max_batch_tokens"):
            return int(saved["fingerprint"]["max_batch_tokens"])
        return auto_batch_tokens(
            self.model, self.device, max_length=self.settings.max_seq_length, precision=self.precision
        )

    # --- resume / save ----------------------------------------------------------------------

    def _saved_state(self) -> dict | None:
        path = self.checkpoint_dir / "trainer_state.json"
        if not (self.allow_resume and path.is_file()):
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def resume(self) -> bool:
        """Continue from the checkpoint when it was made with the same data and settings
        (on any device or precision: tensors are read onto the CPU, then copied into place)."""
        import torch
        from peft import get_peft_model_state_dict, set_peft_model_state_dict
        from safetensors.torch import load_file

        from cognitivetwin_core.models.adapters import decoder_path, renamed_adapter_keys

        state = self._saved_state()
        if state is None:
            return False
        changed = fingerprint_changes(state.get("fingerprint") or {}, self.fingerprint)
        if changed:
            log.info("local LoRA checkpoint in %s not resumed: %s changed", self.checkpoint_dir, ", ".join(changed))
            return False
        weights = load_file(str(self.checkpoint_dir / "adapter_model.safetensors"))
        # A Gemma 3 4B checkpoint from when the full image-text model was trained: its names.
        renames = renamed_adapter_keys(weights, decoder_path(self.model.get_base_model()))
        weights = {renames.get(k, k): v for k, v in weights.items() if renames.get(k, k) is not None}
        if set(weights) != set(get_peft_model_state_dict(self.model)):
            # PEFT would skip weights it has no place for, and the run would go on from fresh ones.
            log.info("local LoRA checkpoint in %s not resumed: its weights do not fit the model", self.checkpoint_dir)
            return False
        set_peft_model_state_dict(self.model, weights)
        optimizer_state = torch.load(self.checkpoint_dir / "optimizer.pt", map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(optimizer_state)  # moves the moments onto the parameters' device
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
        import torch
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        def write(folder: Path) -> None:
            weights = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(self.model).items()}
            save_file(weights, str(folder / "adapter_model.safetensors"))
            # Our own file, read back with weights_only=True; saved from the CPU so that any
            # device can read it.
            torch.save(_to_cpu(self.optimizer.state_dict()), folder / "optimizer.pt")
            (folder / "trainer_state.json").write_text(
                json.dumps(
                    {
                        "fingerprint": self.fingerprint,
                        "step": self.step_index,
                        "losses": self.losses,
                        "trained_tokens": self.trained_tokens,
                        "device": self.device,
                        "precision": self.precision,
                        "step_tokens": self.step_tokens,
                    }
                )
            )

        write_dir_atomically(self.checkpoint_dir, write)
        self._saved_step = self.step_index
        self._emit("checkpoint", self.epoch_index, message=str(self.checkpoint_dir))
        return self.checkpoint_dir

    # --- step -------------------------------------------------------------------------------

    def _autocast(self):
        import contextlib

        import torch

        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16)

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
        labelled = sum(e.labelled for e in examples)
        device = self.model.device
        self.optimizer.zero_grad(set_to_none=True)
        weighted_loss, tokens = 0.0, 0
        for piece in pieces:
            ids, labels, mask = _collate([examples[i] for i in piece], self.pad_id)
            ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
            with self._autocast():
                loss, count = assistant_loss(self.model, ids, labels, mask)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise CognitiveTwinError(
                    f"Local LoRA training diverged at step {self.step_index + 1} (the loss is "
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
        kept = ""
        if save and self.step_index and self._saved_step != self.step_index:
            try:
                self.save()
            except Exception:  # the sentence below matters more than this checkpoint
                log.exception("local LoRA: could not save a checkpoint after running out of memory")
        on_cpu = self.device == "cpu"
        if self._saved_step:
            where = "" if on_cpu else " (on the CPU, say)"
            kept = (
                f"; its first {self._saved_step} steps are kept: starting it again with the same "
                f"settings{where} resumes from there"
            )
        last = "close other programs to free memory" if on_cpu else "train on the CPU"
        raise LocalLoraOutOfMemoryError(
            f"Out of memory on {self.device} even in pieces of {self.step_tokens:,} tokens: lower the LoRA rank "
            f"(now {self.settings.lora_r}) or the maximum sequence length (now {self.settings.max_seq_length}), "
            f"pick a smaller base, or {last}{kept}."
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
        run_start_step, run_start_time = self.step_index, time.monotonic()
        done = 0  # batches accounted for, including those trained before a resumed checkpoint
        for epoch_index, batches in enumerate(self.per_epoch):
            self.epoch_index = epoch_index
            for batch in batches:
                if done >= self.total_steps:
                    break
                if done < self.step_index:  # already trained before the checkpoint we resumed from
                    done += 1
                    continue
                if self.should_stop and self.should_stop():
                    self.save()
                    raise CancelledError(
                        f"Local LoRA training stopped at step {self.step_index} of {self.total_steps}; "
                        "starting it again resumes from there."
                    )
                loss_value = self.step(batch)
                done += 1
                elapsed = time.monotonic() - run_start_time
                rate = (self.step_index - run_start_step) / elapsed if elapsed > 0 else None
                eta = (self.total_steps - self.step_index) / rate if rate else None
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
                with self._autocast():
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
        from cognitivetwin_core.phase1.adapter_archive import write_lineage

        losses = self.losses

        def write_adapter(folder: Path) -> None:
            self.model.save_pretrained(str(folder), safe_serialization=True)
            (folder / "README.md").unlink(missing_ok=True)  # PEFT's model-card stub; not part of the layout
            config_path = folder / "adapter_config.json"
            config = json.loads(config_path.read_text(encoding="utf-8"))
            config["base_model_name_or_path"] = self.base_id
            config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
            write_lineage(
                folder,
                {
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
                    "device": self.device,
                    "precision": self.precision,
                    "max_batch_tokens": self.batch_tokens,
                    "tokens_per_second": round(self.tokens_per_second, 2) if self.tokens_per_second else None,
                    "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    **self.extra_lineage,
                },
            )

        write_dir_atomically(self.output_dir, write_adapter)
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


def _to_cpu(value):
    """An optimizer state dict with every tensor on the CPU (readable on any machine)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value


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


# ----- the Phase 1 backend ---------------------------------------------------------------------


def _owner() -> dict:
    """This process, as recorded on a local job (pid plus start time, since pids are reused)."""
    import psutil

    return {"owner_pid": os.getpid(), "owner_started": psutil.Process().create_time()}


# Local jobs training in this process (any LocalLoraJobs instance), by id.
_RUNNING_HERE: set[str] = set()


def _owner_alive(record: JobRecord) -> bool:
    import psutil

    pid = record.owner_pid
    if pid == os.getpid():
        return record.job_id in _RUNNING_HERE
    if not pid:
        return False
    try:
        return abs(psutil.Process(pid).create_time() - float(record.owner_started or 0)) < 1.0
    except (psutil.Error, ValueError):
        return False


class LocalLoraJobs:
    """Local LoRA runs as Phase 1 jobs in the workspace (see `phase1.py` for the interface)."""

    name = "local"

    def __init__(
        self,
        workspace,
        *,
        device: str | None = "auto",
        precision: str | None = "auto",
        max_batch_tokens: int | None = None,
        checkpoint_every: int = 50,
    ):
        self.workspace = workspace
        self.precision = precision
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
            if record.status in ("pending", "running") and not _owner_alive(record):
                self._store(
                    record.job_id,
                    status="interrupted",
                    error="The app stopped during this local run; launch it again to resume from its last checkpoint.",
                )

    def _store(self, job_id: str, **fields) -> None:
        fields["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.workspace.upsert_phase1_job(job_id, fields)

    def _record(self, job_id: str) -> JobRecord:
        record = read_job(self.workspace, job_id)
        if record is None or record.backend != self.name:
            raise InputError(f"No local Phase 1 job {job_id} in this workspace: see `cognitivetwin phase1 --list`.")
        return record

    def jobs(self) -> list[JobRecord]:
        return read_jobs(self.workspace, self.name)

    def unfinished_jobs(self) -> list[str]:
        return [r.job_id for r in self.jobs() if r.status in ("pending", "running")]

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
            plan.warnings.append(
                f"{resolved.display_name} is not on this computer: download it first "
                f"(`cognitivetwin model download {resolved.short_name}`)"
            )
        plan.estimated_tokens = stats.approx_tokens * max(1, settings.epochs)
        from cognitivetwin_core.durations import format_duration
        from cognitivetwin_core.models.devices import select_device
        from cognitivetwin_core.phase1.estimates import estimate_local_seconds
        from cognitivetwin_core.phase1.throughput import measured_tokens_per_second

        if settings.max_steps:
            plan.warnings.append(f"stops after {settings.max_steps} step(s)")
        device = select_device(self.device)
        # Measured speed of earlier runs of this base on this kind of device, else a guess.
        rate = measured_tokens_per_second(self.workspace, settings.base_model, device)
        seconds, how = estimate_local_seconds(
            plan.estimated_tokens, settings.base_model, measured_tokens_per_second=rate, device=device
        )
        plan.limits["expected_seconds"] = seconds
        if rate:
            plan.limits["measured_tokens_per_second"] = rate
        plan.estimate_note = f"expected time: about {format_duration(seconds)} on {device} ({how})"
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
                result = train_local_lora(
                    plan.data.path,
                    plan.settings.base_model,
                    output_dir,
                    plan.settings,
                    work_dir=work_dir,
                    on_event=on_event,
                    should_stop=stop.is_set,
                    device=self.device,
                    precision=self.precision,
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
                    # Measured speed: the next estimate for this base and device starts from it.
                    device=result.device,
                    precision=result.precision,
                    trained_tokens=result.trained_tokens,
                    tokens_per_second=result.tokens_per_second,
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
        status = record.status or "pending"
        step = last.get("step", record.step)
        if new:
            self._store(
                job_id,
                events=(list(record.events) + [e for e in new if e["type"] != "step"])[-300:],
                step=step,
                total_steps=last.get("total_steps"),
                last_loss=last.get("loss"),
            )
        return JobUpdate(
            job_id,
            status,
            new_events=new,
            step=step,
            total_steps=last.get("total_steps", record.total_steps),
            epochs_completed=record.epochs_completed,
            eta_seconds=last.get("eta_seconds", record.eta_seconds),
            adapter_path=record.adapter_path,
            message=(record.error or "") if status in ("error", "cancelled", "interrupted") else "",
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
        if stop is None or record.status not in ("pending", "running"):
            raise InputError(f"Local job {job_id} is {record.status}; there is nothing to cancel here.")
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
        if record.status != "completed" or not record.adapter_path:
            if job_id in self._threads:
                update = self.wait(job_id)
                record = self._record(job_id)
                if update.status != "completed":
                    raise InputError(f"Local job {job_id} ended {update.status}: {update.message}")
            else:
                raise InputError(f"Local job {job_id} is {record.status}, not completed.")
        folder = Path(record.adapter_path)
        if output_dir:
            from cognitivetwin_core.output_dirs import check_adapter_output

            check_adapter_output(output_dir, overwrite=overwrite)
            target = Path(output_dir)
            write_dir_atomically(target, lambda tmp: shutil.copytree(folder, tmp, dirs_exist_ok=True))
            return target
        return folder
