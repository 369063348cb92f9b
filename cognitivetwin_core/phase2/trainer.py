"""The Phase 2 trainer: frozen base -> cached pooled turns -> trained adapter and heads.

A plain object. `run()` is a generator of events; the CLI draws progress bars from them and
the app's QThread worker turns them into signals. Control from any thread:
`request_stop(save=True)` (finish the current step, save a usable model, outcome
"stopped") and `request_cancel()` (discard the run, outcome "cancelled"); both are flags
checked before every encoding batch and every training step.

    config = Phase2Config(base_model="smollm2-135m", output_dir="runs/a", epochs=10)
    trainer = Phase2Trainer(config, conversations=[...])   # or workspace=Workspace|path, or data_file=path
    for event in trainer.run():
        event.kind   # "encoding" | "step" | "epoch" | "checkpoint" | "finished"

Events (dataclasses; every one has `kind` and `phase` ("encoding" or "training")):
    EncodingEvent(done, total, tokens, tokens_per_s, eta_s, cache_hit)     done/total in messages
    StepEvent(epoch, epochs, step, steps_per_epoch, global_step, total_steps, losses{total,
              style, stylometric, pattern, planning}, lr, examples_per_s, eta_s)
    EpochEvent(epoch, epochs, train_losses{}, val_losses{}, metrics{pattern_macro_f1,
              pattern_macro_f1_baseline, pattern_macro_auc, pattern_macro_auc_baseline,
              planning_cosine, planning_cosine_baseline, style_retrieval, style_retrieval_chance},
              per_pattern{name: {support, f1, f1_baseline, auc}}, table)
    CheckpointEvent(epoch, path)
    FinishedEvent(outcome "completed"|"stopped"|"cancelled"|"failed", output_dir, message, metrics)

Files in `output_dir`: `config.json` + `model.safetensors` (the trained components, loadable
with `create_cognitivetwin_v2(components_dir=...)`), `metrics.json` (per epoch, with
baselines), `run.json` (lineage: data hash and size, base, adapter, every parameter,
versions, start/end, outcome), `checkpoint/` (resume state, see phase2_checkpoint).

Errors a user can fix in the inputs (no data, a bad file, an unknown base) are raised as
CognitiveTwinError before anything is written; failures during the run (NaN loss, out of
memory) end with FinishedEvent(outcome="failed", message=...) and the last good checkpoint.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import platform
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from cognitivetwin_core.atomic_files import write_json_atomically
from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.errors import CognitiveTwinError, InputError
from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL
from cognitivetwin_core.models.training import fingerprint_changes, lr_factor, resume_mismatch_error, warmup_steps

log = logging.getLogger(__name__)

DEFAULT_LOSS_WEIGHTS = {"style": 1.0, "stylometric": 0.5, "pattern": 1.0, "planning": 1.0}


@dataclass
class Phase2Config:
    base_model: str = DEFAULT_BASE_MODEL
    adapter_dir: str | None = None
    output_dir: str | None = None  # default with a workspace: <workspace>/runs/<run id>
    epochs: int = 10
    # Conversations per batch (all their messages go in: style positives) and batches per update.
    # None: 4 and 4 on the CPU; 16 and 1 on CUDA (the same conversations per update, a quarter
    # of the steps), see resolve_for_device.
    batch_size: int | None = None
    lr: float = 1e-3  # the seed's 1e-4 is too small for the few updates small data gives (see the CLI help)
    gradient_accumulation: int | None = None
    device: str = "auto"
    plan_steps: int = 4
    seed: int = 42
    loss_weights: dict = field(default_factory=lambda: dict(DEFAULT_LOSS_WEIGHTS))
    val_fraction: float = 0.2
    num_threads: int | None = None
    leave_one_core_free: bool = False
    resume: bool = False
    overwrite: bool = False  # replace an earlier run in output_dir (never other files)
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    max_grad_norm: float = 1.0
    temperature: float = 0.1  # InfoNCE
    cache_dir: str | None = None  # default: <workspace>/cache/phase2-features or the user cache
    max_window_tokens: int | None = None  # None: 4096 on CUDA, 1024 elsewhere (docs/gpu.md)
    overlap_tokens: int = 256
    encode_batch_tokens: int | None = None  # None: sized from free device memory
    # Stop when validation loss has not improved for this many epochs (0: never stop early).
    patience: int = 5
    name: str | None = None  # the run's readable name (default: base, data, date)
    # Steps between host syncs for logging (loss read-out, NaN check, StepEvent). None: every
    # step on the CPU, every 25 on CUDA (a read-out waits for the GPU to drain).
    log_every_steps: int | None = None

    def resolve_for_device(self, device: str) -> None:
        """Fill the settings left to the device (None) with its defaults."""
        cuda = device.startswith("cuda")
        if self.batch_size is None:
            self.batch_size = 16 if cuda else 4
        if self.gradient_accumulation is None:
            self.gradient_accumulation = 1 if cuda else 4
        if self.log_every_steps is None:
            self.log_every_steps = 25 if cuda else 1

    def validate(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append("epochs must be at least 1")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append("batch size must be at least 1")
        if self.gradient_accumulation is not None and self.gradient_accumulation < 1:
            problems.append("gradient accumulation must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append("the learning rate must be a positive number")
        if self.patience < 0:
            problems.append("patience must be 0 (off) or more epochs")
        if self.plan_steps < 1:
            problems.append("plan steps must be at least 1")
        if self.encode_batch_tokens is not None and self.encode_batch_tokens < 1:
            problems.append("encode batch tokens must be at least 1")
        if self.max_window_tokens is not None and self.max_window_tokens < 16:
            problems.append("the encoding window must be at least 16 tokens")
        if not 0.0 <= self.val_fraction < 1.0:
            problems.append("the validation fraction must be in [0, 1)")
        unknown = set(self.loss_weights) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            problems.append(f"unknown loss weights {sorted(unknown)} (known: {', '.join(DEFAULT_LOSS_WEIGHTS)})")
        if problems:
            raise InputError("Phase 2 settings: " + "; ".join(problems) + ".")

    def weight(self, name: str) -> float:
        return float(self.loss_weights.get(name, DEFAULT_LOSS_WEIGHTS[name]))


# ----- events ---------------------------------------------------------------------------------


@dataclass
class EncodingEvent:
    kind: ClassVar[str] = "encoding"
    phase: ClassVar[str] = "encoding"
    done: int
    total: int
    tokens: int
    tokens_per_s: float
    eta_s: float | None
    cache_hit: bool


@dataclass
class StepEvent:
    kind: ClassVar[str] = "step"
    phase: ClassVar[str] = "training"
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    global_step: int
    total_steps: int
    losses: dict
    lr: float
    examples_per_s: float
    eta_s: float | None
    # CUDA memory held by the run's process (allocated, peak allocated), bytes; None off CUDA.
    # The app's window has no torch of its own: it shows the figure the trainer reports.
    device_memory: tuple[int, int] | None = None


@dataclass
class EpochEvent:
    kind: ClassVar[str] = "epoch"
    phase: ClassVar[str] = "training"
    epoch: int
    epochs: int
    train_losses: dict
    val_losses: dict
    metrics: dict
    per_pattern: dict
    table: str


@dataclass
class CheckpointEvent:
    kind: ClassVar[str] = "checkpoint"
    phase: ClassVar[str] = "training"
    epoch: int
    path: str


@dataclass
class FinishedEvent:
    kind: ClassVar[str] = "finished"
    phase: ClassVar[str] = "training"
    outcome: str
    output_dir: str | None
    message: str
    metrics: dict | None = None


class _Stop(Exception):
    pass


class _Failure(Exception):
    pass


@dataclass
class _Data:
    """Per message arrays, rows in cache order (conversation by conversation)."""

    coords: object  # torch float [M, 5]
    phases: object  # torch long [M]
    homogeneity: object  # torch float [M]
    patterns: object  # torch float [M, 12]
    stylometrics: object  # torch float [M, S]
    roles: object  # torch long [M]
    offsets: list[int]


@dataclass
class _Training:
    """What the epoch loop carries from one step to the next."""

    components: object
    optimizer: object
    scheduler: object
    identity: dict
    train_ids: list[int]
    val_ids: list[int]
    batches_per_epoch: int
    started: float
    start_epoch: int = 1
    global_step: int = 0
    history: list = field(default_factory=list)
    last_good_epoch: int = 0
    steps_this_run: int = 0
    examples_this_run: int = 0
    epoch_train_losses: dict = field(default_factory=dict)
    best_epoch: int | None = None  # the epoch whose components are the run's model
    best_state: dict | None = None  # its components' state dict, on the CPU
    best_loss: float = math.inf
    early_stop: str | None = None  # why the run stopped before its last epoch
    ablation: dict | None = None  # trajectory_ablation of the saved model


class _LossMeter:
    """Step losses summed on the device; read on the host (one sync) only every `every` steps
    and at the epoch's last step. A read gives the mean over the steps since the last read."""

    def __init__(self, every: int):
        self.every = max(1, int(every))
        self.names: list[str] = []
        self.window = None  # float64 tensor on the device: sums since the last read
        self.steps = 0
        self.epoch_sums: dict[str, float] = {}

    def add(self, losses: dict) -> None:
        import torch

        self.names = list(losses)
        stacked = torch.stack([value.detach() for value in losses.values()]).double()
        self.window = stacked if self.window is None else self.window + stacked
        self.steps += 1

    def due(self, step: int, last_step: int) -> bool:
        return step % self.every == 0 or step == last_step

    def read(self) -> dict:
        sums = self.window.tolist()
        for name, value in zip(self.names, sums):
            self.epoch_sums[name] = self.epoch_sums.get(name, 0.0) + value
        means = {name: value / self.steps for name, value in zip(self.names, sums)}
        self.window, self.steps = None, 0
        return means


def _cuda_memory(device: str) -> tuple[int, int] | None:
    """(allocated, peak allocated) bytes on a CUDA device: counters the caching allocator keeps,
    read without a sync."""
    if not device.startswith("cuda"):
        return None
    import torch

    return int(torch.cuda.memory_allocated(device)), int(torch.cuda.max_memory_allocated(device))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _versions() -> dict:
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for name in ("cognitivetwin-studio", "torch", "transformers", "peft", "safetensors", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class Phase2Trainer:
    def __init__(
        self,
        config: Phase2Config,
        *,
        conversations: Sequence[Conversation] | None = None,
        workspace=None,
        data_file: str | Path | None = None,
    ):
        config.validate()
        sources = sum(x is not None for x in (conversations, workspace, data_file))
        if sources != 1:
            raise InputError("Give Phase 2 exactly one data source: conversations, a workspace or a data file.")
        self.config = config
        self._conversations = list(conversations) if conversations is not None else None
        self._workspace_arg = workspace
        self.workspace = None
        self.data_file = Path(data_file) if data_file is not None else None
        self._lock = threading.Lock()
        self._stop_requested = False
        self._save_on_stop = True
        self._cancel_requested = False
        self.output_dir: Path | None = None
        self.run_id: str | None = None
        self.run_record: dict = {}

    # ----- control (thread-safe) ---------------------------------------------------------------

    def request_stop(self, save: bool = True) -> None:
        with self._lock:
            self._stop_requested = True
            self._save_on_stop = save

    def request_cancel(self) -> None:
        with self._lock:
            self._cancel_requested = True

    def _should_stop(self) -> bool:
        with self._lock:
            return self._stop_requested or self._cancel_requested

    def _check_flags(self) -> None:
        if self._should_stop():
            raise _Stop()

    # ----- data ---------------------------------------------------------------------------------

    def _load_conversations(self) -> tuple[list[Conversation], dict]:
        if self._conversations is not None:
            conversations, source = self._conversations, {"kind": "conversations"}
        elif self._workspace_arg is not None:
            from cognitivetwin_core.data.workspace import Workspace

            self.workspace = (
                self._workspace_arg
                if isinstance(self._workspace_arg, Workspace)
                else Workspace.open(self._workspace_arg)
            )
            from cognitivetwin_core.data.person_identity import linked_conversations

            # One person across sources: linked aliases carry their one name (docs/importers.md).
            conversations = list(linked_conversations(self.workspace, self.workspace.iter_conversations()))
            source = {"kind": "workspace", "path": str(self.workspace.path)}
        else:
            if not self.data_file.exists():  # the importers word the rest (a folder, a pipe...)
                raise InputError(f"The data file {self.data_file} does not exist: check the path.")
            from cognitivetwin_core.data.importers import read_conversations

            conversations, _report = read_conversations(self.data_file)
            source = {"kind": "file", "path": str(self.data_file.resolve())}
        conversations = [c for c in conversations if c.messages]
        if not conversations:
            raise InputError("There are no conversations with messages to train on: import some data first.")
        minimum = 2 if self.config.val_fraction > 0 else 1
        if len(conversations) < minimum:
            raise InputError(
                f"Phase 2 needs at least {minimum} conversations (one for validation); the data has "
                f"{len(conversations)}. Import more, or set the validation fraction to 0."
            )
        return conversations, source

    def _start_annotating(self, conversations: list[Conversation]) -> None:
        """Annotate on a background thread while the base encodes (mostly device time)."""
        from concurrent.futures import ThreadPoolExecutor

        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phase2-annotate")
        self._annotating = (conversations, executor.submit(self._compute_annotations, conversations))
        executor.shutdown(wait=False)

    def _annotations(self, conversations: list[Conversation]) -> _Data:
        """The per-message annotations: those started beside the encoding when they are for
        these conversations, else computed now."""
        pending = getattr(self, "_annotating", None)
        if pending is not None and pending[0] is conversations:
            self._annotating = None
            return pending[1].result()
        return self._compute_annotations(conversations)

    def _compute_annotations(self, conversations: list[Conversation]) -> _Data:
        import torch

        from cognitivetwin_core.annotation.patterns import pattern_vector, patterns_for
        from cognitivetwin_core.annotation.stylometrics import stylometric_features
        from cognitivetwin_core.annotation.trajectory import annotate

        coords, phases, homogeneity, patterns, stylo, roles, offsets = [], [], [], [], [], [], [0]
        role_ids = {"system": 0, "user": 1, "assistant": 2, "tool": 3}
        for conversation in conversations:
            for message, turn in zip(conversation.messages, annotate(conversation)):
                coords.append([float(x) for x in turn.coordinates])
                phases.append(int(turn.phase_id))
                homogeneity.append(float(turn.homogeneity))
                patterns.append(pattern_vector(patterns_for(message)))
                stylo.append(stylometric_features(message.content))
                roles.append(role_ids.get(message.role, 4))
            offsets.append(offsets[-1] + len(conversation.messages))
        return _Data(
            coords=torch.tensor(coords, dtype=torch.float32),
            phases=torch.tensor(phases, dtype=torch.long),
            homogeneity=torch.tensor(homogeneity, dtype=torch.float32),
            patterns=torch.tensor(patterns, dtype=torch.float32),
            stylometrics=torch.tensor(stylo, dtype=torch.float32),
            roles=torch.tensor(roles, dtype=torch.long),
            offsets=offsets,
        )

    def split(self, count: int) -> tuple[list[int], list[int]]:
        """(train, validation) conversation indices: a seeded split by conversation."""
        import torch

        generator = torch.Generator().manual_seed(self.config.seed)
        order = torch.randperm(count, generator=generator).tolist()
        val_count = 0
        if self.config.val_fraction > 0 and count >= 2:
            val_count = min(count - 1, max(1, round(self.config.val_fraction * count)))
        return sorted(order[val_count:]), sorted(order[:val_count])

    # ----- the run --------------------------------------------------------------------------------

    def run(self) -> Iterator[object]:
        """Train; yield events. Raises CognitiveTwinError for unusable inputs (before writing)."""
        config = self.config
        from cognitivetwin_core.models.devices import configure_threads, select_device

        device = select_device(config.device)
        config.resolve_for_device(device)
        conversations, source = self._load_conversations()
        from cognitivetwin_core.phase2.feature_cache import data_hash

        digest = data_hash(conversations)
        self._prepare_output()  # checks only: the folder is made after every check passed
        self._check_resumable(digest)
        self._create_output()
        threads = configure_threads(config.num_threads, config.leave_one_core_free)
        message_count = sum(len(c.messages) for c in conversations)
        self.run_record.update(
            {
                "run_id": self.run_id,
                "name": self._run_name(source, len(conversations)),
                "status": "running",
                "outcome": "running",
                "started_at": self.run_record.get("started_at") or _now(),
                "ended_at": None,
                "data": {**source, "hash": digest, "conversations": len(conversations), "messages": message_count},
                "base_model": config.base_model,
                "adapter": config.adapter_dir,
                "parameters": asdict(config),
                "device": device,
                "torch_threads": threads,
                "versions": _versions(),
                "output_dir": str(self.output_dir),
            }
        )
        self._write_run_record()
        try:
            self._start_annotating(conversations)  # on a thread, while the base encodes
            cached, hit = yield from self._encode(conversations, device)
            if cached is None:
                raise _Stop()
            self.run_record["feature_cache"] = {"path": str(cached.path), "hit": hit}
            yield from self._train(conversations, cached, device, digest)
        except _Stop:
            yield self._finish_stopped()
        except _Failure as failure:
            yield self._finish("failed", str(failure))
        except CognitiveTwinError as exc:
            yield self._finish("failed", str(exc))
        except Exception as exc:
            from cognitivetwin_core.errors import is_disk_failure
            from cognitivetwin_core.models.devices import is_out_of_memory

            if is_disk_failure(exc):
                yield self._finish("failed", self._disk_failure_message(exc))
                return
            if is_out_of_memory(exc):
                yield self._finish(
                    "failed",
                    f"Out of memory on {device}: lower the batch size (now {config.batch_size}) or the encoding "
                    f"batch (--encode-batch-tokens, now {config.encode_batch_tokens or 'automatic'}) or the window "
                    f"(--max-window-tokens, now {config.max_window_tokens or 'automatic'}), or train with device cpu.",
                )
                return
            self._record_outcome("failed", f"Unexpected error: {exc!r}")
            raise

    def _disk_failure_message(self, exc: OSError) -> str:
        """A full or read-only disk mid-run: what was saved before stays whole (every file is
        written to a temporary name, then renamed), so say where, and that it can resume."""
        from cognitivetwin_core.errors import os_error

        message = str(os_error(exc, "writing", exc.filename or self.output_dir))
        if self.output_dir is not None and (self.output_dir / "checkpoint").is_dir():
            message += " The last finished epoch's checkpoint is kept: resume the run once there is space."
        return message

    def _run_name(self, source: dict, conversations: int) -> str:
        """The name a resumed run already has (it may have been renamed since), else --name,
        else base · data · date."""
        from cognitivetwin_core.phase2.run_names import default_run_name

        if self.run_record.get("name"):
            return self.run_record["name"]
        if self.config.name and self.config.name.strip():
            return " ".join(self.config.name.split())
        return default_run_name(self.config.base_model, {**source, "conversations": conversations})

    def _prepare_output(self) -> None:
        """Decide the output folder and refuse an unusable one; nothing is written here."""
        from cognitivetwin_core.output_dirs import PHASE2_RUN, check_phase2_output

        config = self.config
        if config.output_dir:
            output = Path(config.output_dir).expanduser()
        elif self.workspace is not None:
            output = self.workspace.runs_dir / time.strftime("phase2-%Y%m%d-%H%M%S")
        else:
            raise InputError("Phase 2 needs an output folder (--output-dir).")
        kind = check_phase2_output(output, resume=config.resume, overwrite=config.overwrite)
        self._created_output = not output.exists()
        self._replace_earlier_run = kind == PHASE2_RUN and not config.resume
        existing_record = output / "run.json"
        from cognitivetwin_core.phase2.checkpoint import find_checkpoint

        if config.resume and kind == PHASE2_RUN and find_checkpoint(output):
            self.run_record = json.loads(existing_record.read_text(encoding="utf-8"))
            self.run_id = self.run_record.get("run_id") or uuid.uuid4().hex[:12]
        else:
            if config.resume and kind == PHASE2_RUN:
                raise InputError(
                    f"{output} holds a Phase 2 run without a checkpoint to resume from; "
                    "pass --overwrite to train it again, or choose a new output folder."
                )
            self.run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
            self.run_record = {}
        self.output_dir = output.absolute()

    def _create_output(self) -> None:
        """After every check passed: make the folder; with --overwrite, remove the earlier run's files."""
        from cognitivetwin_core.phase2.checkpoint import _PREVIOUS, CHECKPOINT_DIR
        from cognitivetwin_core.phase2.twin_model import CONFIG_NAME, WEIGHTS_NAME

        output = self.output_dir
        try:
            output.mkdir(parents=True, exist_ok=True)
            if self._replace_earlier_run:
                for name in ("run.json", "metrics.json", CONFIG_NAME, WEIGHTS_NAME):
                    (output / name).unlink(missing_ok=True)
                for name in (CHECKPOINT_DIR, _PREVIOUS):
                    shutil.rmtree(output / name, ignore_errors=True)
        except OSError as exc:
            raise CognitiveTwinError(f"Cannot create the output folder {output}: {exc.strerror}.") from exc
        self.output_dir = output.resolve()

    def _check_resumable(self, digest: str) -> None:
        """Refuse --resume with other data or settings before anything is overwritten."""
        from cognitivetwin_core.phase2.checkpoint import find_checkpoint

        folder = find_checkpoint(self.output_dir) if self.config.resume else None
        if folder is None:
            return
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        saved = state.get("identity", {})
        wanted = {"data_hash": digest, **self._resume_identity()}
        changed = fingerprint_changes(saved, wanted, keys=wanted)
        if changed:
            raise resume_mismatch_error(folder, changed)
        done = int(state.get("epoch", 0))
        if done >= self.config.epochs:
            raise InputError(
                f"The run in {self.output_dir} has already trained {done} epochs; "
                f"pass --epochs above {done} to continue it."
            )

    def _write_run_record(self) -> None:
        write_json_atomically(self.output_dir / "run.json", self.run_record, default=str)
        if self.workspace is not None:
            self.workspace.upsert_phase2_run(self.run_id, self.run_record)

    def _record_outcome(self, outcome: str, message: str) -> None:
        self.run_record.update({"status": outcome, "outcome": outcome, "message": message, "ended_at": _now()})
        try:
            if self.output_dir is not None and self.output_dir.exists():
                self._write_run_record()
            elif self.workspace is not None:
                self.workspace.upsert_phase2_run(self.run_id, self.run_record)
        except (OSError, CognitiveTwinError) as exc:
            # The disk that ended the run may refuse its record too: the outcome still reaches
            # the caller (the event, the CLI's message); run.json keeps its last good state.
            log.warning("Could not record the outcome of Phase 2 run %s: %s", self.run_id, exc)

    def _finish(self, outcome: str, message: str, metrics: dict | None = None) -> FinishedEvent:
        self._record_outcome(outcome, message)
        log.info("Phase 2 run %s %s: %s", self.run_id, outcome, message)
        return FinishedEvent(outcome, str(self.output_dir), message, metrics)

    def _finish_stopped(self) -> FinishedEvent:
        with self._lock:
            cancelled = self._cancel_requested
        if cancelled:
            self._discard()
            return self._finish("cancelled", "Cancelled: the run was discarded.")
        return self._finish(
            "stopped",
            getattr(self, "_stop_message", "Stopped before training began."),
            getattr(self, "_stop_metrics", None),
        )

    def _discard(self) -> None:
        """Cancel: remove what this run wrote (the feature cache stays: it is valid and shared)."""
        if self.output_dir is None:
            return
        if self._created_output:
            shutil.rmtree(self.output_dir, ignore_errors=True)
        # A resumed run keeps its earlier checkpoint and record (updated below).

    # ----- encoding -------------------------------------------------------------------------------

    def feature_cache_dir(self) -> Path:
        from cognitivetwin_core.phase2.feature_cache import default_cache_root

        if self.config.cache_dir:
            return Path(self.config.cache_dir)
        if self.workspace is not None:
            return self.workspace.cache_dir / "phase2-features"
        return default_cache_root()

    def encoding_settings_for(self, device: str):
        from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, default_window_tokens

        config = self.config
        return EncodingSettings(
            max_window_tokens=config.max_window_tokens or default_window_tokens(device),
            overlap_tokens=config.overlap_tokens,
            batch_tokens=config.encode_batch_tokens,
        )

    def _encode(self, conversations, device):
        from cognitivetwin_core.phase2.feature_cache import iter_encode_with_cache

        config = self.config
        cache_dir = self.feature_cache_dir()
        self.encoding_settings = self.encoding_settings_for(device)
        started = time.perf_counter()
        steps = iter_encode_with_cache(
            conversations,
            base_model=config.base_model,
            adapter_dir=config.adapter_dir,
            cache_dir=cache_dir,
            settings=self.encoding_settings,
            device=device,
            should_stop=self._should_stop,
        )
        total = sum(len(c.messages) for c in conversations)
        while True:
            try:
                done, total, tokens = next(steps)
            except StopIteration as finished:
                cached, hit = finished.value
                break
            elapsed = max(time.perf_counter() - started, 1e-9)
            rate = done / elapsed
            yield EncodingEvent(done, total, tokens, tokens / elapsed, (total - done) / rate if rate else None, False)
        if cached is not None:
            yield EncodingEvent(total, total, 0, 0.0, 0.0, hit)
        return cached, hit

    # ----- training -------------------------------------------------------------------------------

    def _train(self, conversations, cached, device, digest):
        """Set up, resume if asked, then epoch by epoch: steps, validation, checkpoint."""
        state = self._setup_training(conversations, cached, device, digest)
        self._run_conversations = conversations  # the person's style centroid averages their messages
        self._resume_into(state)
        self._stop_message = "Stopped before the first epoch ended; nothing was saved."
        for epoch in range(state.start_epoch, self.config.epochs + 1):
            yield from self._train_epoch(state, epoch)
            yield from self._end_epoch(state, epoch)
            state.early_stop = self._early_stop_reason(state, epoch)
            if state.early_stop:
                log.info("Phase 2 run %s: %s", self.run_id, state.early_stop)
                break
        yield self._complete(state)

    def _setup_training(self, conversations, cached, device, digest) -> _Training:
        """Annotations, the split, fresh components with their statistics, optimizer and schedule."""
        import numpy as np
        import torch

        from cognitivetwin_core.phase2.twin_model import TwinComponents, TwinConfig

        config = self.config
        data = self._annotations(conversations)
        if data.offsets[-1] != cached.features.shape[0]:
            raise CognitiveTwinError("The feature cache does not match the data; delete the cache folder and retry.")
        train_ids, val_ids = self.split(len(conversations))
        self.run_record["split"] = {
            "train_conversations": len(train_ids),
            "validation_conversations": len(val_ids),
            "validation_ids": [conversations[i].id for i in val_ids],
        }
        self._data, self._cached, self._device = data, cached, device
        self._val_ids = val_ids

        torch.manual_seed(config.seed)
        twin_config = TwinConfig(
            hidden_size=cached.hidden_size,
            plan_steps=config.plan_steps,
            base_model=str(config.base_model),
            adapter=str(Path(config.adapter_dir).resolve()) if config.adapter_dir else None,
            encoding=self.encoding_settings.cache_identity(),
        )
        components = TwinComponents(twin_config)
        mean, std = self._feature_statistics(train_ids)
        components.set_feature_statistics(mean, std)
        components.to(device)
        train_rows = [i for c in train_ids for i in range(data.offsets[c], data.offsets[c + 1])]
        self._train_prior = data.patterns[train_rows].mean(0).numpy() if train_rows else np.zeros(12)
        prior = torch.from_numpy(self._train_prior).float()
        self._pattern_pos_weight = ((1 - prior) / prior.clamp_min(1e-3)).clamp(1.0, 10.0).to(device)
        # Stylometric features are mostly small fractions with small spreads: an unweighted MSE
        # from sigmoid(0) = 0.5 barely moves (the readout said ~0.5 for everything). Errors are
        # measured in training standard deviations, and the readout starts at the means.
        train_stylo = data.stylometrics[train_rows] if train_rows else data.stylometrics
        self._stylometric_mean = train_stylo.mean(0)
        self._stylometric_scale = (1.0 / train_stylo.std(0, unbiased=False).clamp_min(0.02)).to(device)
        components.style_head.init_readout(self._stylometric_mean)

        batches_per_epoch = max(1, math.ceil(len(train_ids) / config.batch_size))
        optimizer, scheduler = self._optimizer_and_schedule(components, batches_per_epoch)
        return _Training(
            components=components,
            optimizer=optimizer,
            scheduler=scheduler,
            identity={"data_hash": digest, "hidden_size": cached.hidden_size, **self._resume_identity()},
            train_ids=train_ids,
            val_ids=val_ids,
            batches_per_epoch=batches_per_epoch,
            started=time.perf_counter(),
        )

    def _optimizer_and_schedule(self, components, batches_per_epoch: int):
        """AdamW with a linear warm-up then a cosine decay to 10% over the whole run."""
        import torch

        config = self.config
        optimizer = torch.optim.AdamW(components.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        updates_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation)
        total_updates = updates_per_epoch * config.epochs
        warmup = warmup_steps(total_updates, config.warmup_fraction)

        def schedule(update: int) -> float:
            return lr_factor(update, total_updates, warmup, decay="cosine")

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _resume_into(self, state: _Training) -> None:
        """With --resume: weights, optimizer, schedule, RNG and history from the last checkpoint."""
        from cognitivetwin_core.phase2.checkpoint import find_checkpoint, load_checkpoint, restore_rng

        checkpoint_dir = find_checkpoint(self.output_dir) if self.config.resume else None
        if checkpoint_dir is None:
            return
        checkpoint = load_checkpoint(checkpoint_dir)
        # Checkpoints written before epochs could grow still record them: not compared.
        saved_identity = {k: v for k, v in checkpoint.trainer_state.get("identity", {}).items() if k != "epochs"}
        changed = fingerprint_changes(saved_identity, state.identity)
        if changed:
            raise resume_mismatch_error(checkpoint_dir, changed)
        state.components.load_state_dict(checkpoint.components_state)
        state.optimizer.load_state_dict(checkpoint.optimizer_state)
        state.scheduler.load_state_dict(checkpoint.scheduler_state)
        restore_rng(checkpoint.rng_state)
        state.start_epoch = int(checkpoint.trainer_state["epoch"]) + 1
        state.global_step = int(checkpoint.trainer_state["global_step"])
        state.history = checkpoint.trainer_state.get("history", [])
        state.last_good_epoch = state.start_epoch - 1
        if checkpoint.best_state is not None and checkpoint.trainer_state.get("best_epoch"):
            state.best_state = checkpoint.best_state
            state.best_epoch = int(checkpoint.trainer_state["best_epoch"])
            best_loss = checkpoint.trainer_state.get("best_loss")
            state.best_loss = math.inf if best_loss is None else float(best_loss)
        log.info("Resuming %s from epoch %d", self.output_dir, state.start_epoch)

    def _epoch_batches(self, state: _Training, epoch: int) -> list[list[int]]:
        """The training conversations in a seeded order for this epoch, cut into batches."""
        import torch

        config = self.config
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        order = [state.train_ids[i] for i in torch.randperm(len(state.train_ids), generator=generator).tolist()]
        return [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]

    def _train_epoch(self, state: _Training, epoch: int):
        """One pass over the training conversations; a StepEvent every `log_every_steps` batches
        (and at the last), when the losses are read on the host. Leaves the mean training losses
        in `state.epoch_train_losses`."""
        import torch

        config = self.config
        components, optimizer = state.components, state.optimizer
        components.train()
        batches = self._epoch_batches(state, epoch)
        total_steps = state.batches_per_epoch * config.epochs
        meter = _LossMeter(config.log_every_steps)
        optimizer.zero_grad(set_to_none=True)
        for step, batch in enumerate(batches, start=1):
            if self._should_stop():
                self._stop_during_training(state)
                raise _Stop()
            losses, examples = self._batch_losses(components, batch)
            meter.add(losses)
            logged = meter.read() if meter.due(step, len(batches)) else None  # the one host sync
            if logged is not None:
                self._check_finite(logged, epoch, step, state.last_good_epoch)
            (losses["total"] / config.gradient_accumulation).backward()
            if step % config.gradient_accumulation == 0 or step == len(batches):
                torch.nn.utils.clip_grad_norm_(components.parameters(), config.max_grad_norm)
                optimizer.step()
                state.scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            state.global_step += 1
            state.steps_this_run += 1
            state.examples_this_run += examples
            if logged is None:
                continue
            elapsed = max(time.perf_counter() - state.started, 1e-9)
            yield StepEvent(
                epoch=epoch,
                epochs=config.epochs,
                step=step,
                steps_per_epoch=len(batches),
                global_step=state.global_step,
                total_steps=total_steps,
                losses=logged,
                lr=float(optimizer.param_groups[0]["lr"]),
                examples_per_s=state.examples_this_run / elapsed,
                eta_s=elapsed / state.steps_this_run * (total_steps - state.global_step),
                device_memory=_cuda_memory(self.run_record["device"]),
            )
        state.epoch_train_losses = {name: value / len(batches) for name, value in meter.epoch_sums.items()}

    def _check_finite(self, losses: dict, epoch: int, step: int, last_good_epoch: int) -> None:
        """A NaN or infinite loss (as read on the host) ends the run with a sentence saying what
        to change."""
        total = losses["total"]
        if math.isfinite(total):
            return
        config = self.config
        bad = [n for n, v in losses.items() if n != "total" and not math.isfinite(v)] or ["total"]
        raise _Failure(
            f"Training stopped at epoch {epoch}, step {step}: the {', '.join(bad)} loss became "
            f"{total} (numerically unstable). "
            + (
                f"The last good checkpoint (epoch {last_good_epoch}) is kept in {self.output_dir / 'checkpoint'}; "
                if last_good_epoch >= 1
                else "No epoch had finished, so nothing was saved; "
            )
            + f"lower the learning rate (now {config.lr:g}) and run again"
            + (" with --resume." if last_good_epoch >= 1 else ".")
        )

    def _end_epoch(self, state: _Training, epoch: int):
        """Validation, the best epoch kept, metrics.json, the EpochEvent, then the resume checkpoint."""
        from cognitivetwin_core.phase2.checkpoint import save_checkpoint
        from cognitivetwin_core.phase2.metrics import format_table

        config = self.config
        train_losses = state.epoch_train_losses
        val_losses, metrics, per_pattern = self.evaluate(state.components, state.val_ids)
        state.history.append(
            {
                "epoch": epoch,
                "global_step": state.global_step,
                "train": train_losses,
                "validation": val_losses,
                "metrics": metrics,
                "per_pattern": per_pattern,
            }
        )
        self._keep_if_best(state, epoch, val_losses)
        self._write_metrics(state)
        yield EpochEvent(epoch, config.epochs, train_losses, val_losses, metrics, per_pattern, format_table(metrics))
        trainer_state = {
            "epoch": epoch,
            "global_step": state.global_step,
            "history": state.history,
            "identity": state.identity,
            "best_epoch": state.best_epoch,
            "best_loss": state.best_loss if math.isfinite(state.best_loss) else None,
        }
        path = save_checkpoint(
            self.output_dir, state.components, state.optimizer, state.scheduler, trainer_state, state.best_state
        )
        state.last_good_epoch = epoch
        yield CheckpointEvent(epoch, str(path))

    def _keep_if_best(self, state: _Training, epoch: int, val_losses: dict) -> None:
        """Remember this epoch's components if its validation loss is the lowest so far (every
        epoch is 'best' without validation data: the latest is kept)."""
        loss = val_losses.get("total") if val_losses else None
        if loss is not None and not (math.isfinite(loss) and loss < state.best_loss):
            return
        state.best_epoch = epoch
        state.best_loss = math.inf if loss is None else float(loss)
        state.best_state = {k: v.detach().to("cpu").clone() for k, v in state.components.state_dict().items()}

    def _early_stop_reason(self, state: _Training, epoch: int) -> str | None:
        patience = self.config.patience
        if not patience or state.best_epoch is None or epoch >= self.config.epochs:
            return None
        if epoch - state.best_epoch < patience:
            return None
        return (
            f"Stopped early after epoch {epoch}: the validation loss has not improved for {patience} epochs "
            f"(best at epoch {state.best_epoch})."
        )

    def _best_components(self, state: _Training):
        """The components of the best epoch (a copy; the live ones keep training state)."""
        if state.best_state is None:
            return state.components
        best = copy.deepcopy(state.components)
        best.load_state_dict(state.best_state)
        best.eval()
        return best

    def _save_model(self, state: _Training) -> dict:
        """Save the best epoch's components as the run's model, measure the trajectory ablation,
        write metrics.json; returns the model's validation metrics."""
        from cognitivetwin_core.phase2.twin_model import save_components

        model = self._best_components(state)
        save_components(model, self.output_dir)
        self._save_person_style(model, self._run_conversations)
        state.ablation = self.trajectory_ablation(model, state.val_ids)
        entry = self._entry_of(state, state.best_epoch)
        metrics = dict(entry["metrics"]) if entry else {}
        self._write_metrics(state)
        self.run_record["final_metrics"] = metrics
        self.run_record["best_epoch"] = state.best_epoch
        self.run_record["epochs_trained"] = state.last_good_epoch
        if state.ablation:
            self.run_record["trajectory_ablation"] = state.ablation
        return metrics

    @staticmethod
    def _entry_of(state: _Training, epoch: int | None) -> dict | None:
        for entry in state.history:
            if entry.get("epoch") == epoch and epoch is not None:
                return entry
        return None

    def _complete(self, state: _Training) -> FinishedEvent:
        metrics = self._save_model(state)
        done = state.last_good_epoch
        message = (state.early_stop + " ") if state.early_stop else f"Trained {done} epoch{'s' if done != 1 else ''}. "
        if state.best_epoch is not None and state.best_epoch != done:
            message += f"The model of epoch {state.best_epoch} (the best on validation) is kept in {self.output_dir}."
        else:
            message += f"The model is in {self.output_dir}."
        return self._finish("completed", message, metrics)

    def _resume_identity(self) -> dict:
        """Settings that must not change across --resume. Not epochs: a stopped run may be
        continued with more (or fewer) epochs; the LR schedule is rebuilt for the new total
        and continues from the saved update count."""
        c = self.config
        return {
            "base_model": str(c.base_model),
            "adapter": c.adapter_dir,
            "batch_size": c.batch_size,
            "lr": c.lr,
            "gradient_accumulation": c.gradient_accumulation,
            "plan_steps": c.plan_steps,
            "seed": c.seed,
            "loss_weights": {k: c.weight(k) for k in DEFAULT_LOSS_WEIGHTS},
            "val_fraction": c.val_fraction,
        }

    def _stop_during_training(self, state: _Training) -> None:
        """Stop (and save): the best finished epoch becomes the model; if no epoch finished,
        the weights at the stop do."""
        from cognitivetwin_core.phase2.twin_model import save_components

        with self._lock:
            cancelled, save = self._cancel_requested, self._save_on_stop
        if cancelled:
            return
        last_good_epoch = state.last_good_epoch
        resume = f"; --resume continues from epoch {last_good_epoch + 1}." if last_good_epoch >= 1 else "."
        if save and state.best_epoch is not None:
            self._stop_metrics = self._save_model(state)
            self._stop_message = (
                f"Stopped and saved after {last_good_epoch} finished epoch{'s' if last_good_epoch != 1 else ''}: the model in {self.output_dir} is "
                f"epoch {state.best_epoch}'s (the best on validation){resume}"
            )
        elif save:
            save_components(state.components, self.output_dir)
            _, metrics, per_pattern = self.evaluate(state.components, self._val_ids)
            state.history.append({"epoch": None, "stopped": True, "metrics": metrics, "per_pattern": per_pattern})
            self._write_metrics(state)
            self.run_record["final_metrics"] = metrics
            self._stop_metrics = metrics
            self._stop_message = (
                f"Stopped and saved: the model in {self.output_dir} holds the weights at the stop{resume}"
            )
        else:
            self._stop_message = (
                f"Stopped without saving{resume}"
                if last_good_epoch >= 1
                else "Stopped before the first epoch ended; nothing was saved."
            )

    def _write_metrics(self, state: _Training) -> None:
        """metrics.json: every epoch, the best one, the overfitting flag, verdicts, the ablation."""
        from cognitivetwin_core.phase2.verdicts import head_verdicts
        from cognitivetwin_core.training_verdicts import loss_trend, overfitting

        history = state.history
        epochs = [entry for entry in history if entry.get("epoch") is not None]
        best = self._entry_of(state, state.best_epoch)
        train = [e.get("train", {}).get("total") for e in epochs]
        validation = [e.get("validation", {}).get("total") for e in epochs]
        flag = overfitting(train, validation)
        model_metrics = (best or (history[-1] if history else {})).get("metrics", {})
        payload = {
            "run_id": self.run_id,
            "epochs": history,
            "final": history[-1] if history else None,
            "best_epoch": state.best_epoch,
            "best": best,
            # Kept for readers of older metrics.json files.
            "best_epoch_by_val_loss": state.best_epoch if all(v is not None for v in validation) else None,
            "overfitting": None
            if flag is None
            else {"since_epoch": flag.since_epoch, "best_epoch": flag.best_epoch, "message": flag.message},
            "early_stop": state.early_stop,
            "loss_trend": loss_trend(train).message if len(train) >= 2 else None,
            "verdicts": [v.to_dict() for v in head_verdicts(model_metrics)],
            "trajectory_ablation": getattr(state, "ablation", None),
        }
        write_json_atomically(self.output_dir / "metrics.json", payload, default=str)

    # ----- tensors for a batch of conversations ------------------------------------------------

    def _resident(self) -> dict:
        """The cached features (float16) and every per-message target, on the training device,
        copied there once (not rebuilt from the memory map every step). The features follow
        `self._cached`, the targets `self._data` (swapped by anyone who evaluates on altered
        annotations): each is copied again only when it changes."""
        import numpy as np
        import torch

        device = self._device
        resident = getattr(self, "_resident_data", None) or {}
        if resident.get("cached") is not self._cached or resident.get("device") != device:
            features = torch.from_numpy(np.array(self._cached.features, dtype=np.float16, copy=True))
            resident = {"cached": self._cached, "device": device, "features": features.to(device)}
        if resident.get("data") is not self._data:
            data = self._data
            resident["data"] = data
            for name in ("coords", "phases", "homogeneity", "patterns", "stylometrics", "roles"):
                resident[name] = getattr(data, name).to(device)
        self._resident_data = resident
        return resident

    def _gather(self, conversation_ids: list[int]):
        """A batch's tensors, indexed on the device from the resident data: one small host-to-
        device copy (the conversations' row ranges) and no host sync."""
        import torch

        resident = self._resident()
        device = self._device
        offsets = self._data.offsets
        lengths_host = [offsets[c + 1] - offsets[c] for c in conversation_ids]
        rows = sum(lengths_host)
        ranges = torch.tensor([[offsets[c] for c in conversation_ids], lengths_host], dtype=torch.long)
        starts, lengths = ranges.to(device, non_blocking=True)
        local = torch.arange(len(conversation_ids), device=device)
        conv_of = torch.repeat_interleave(local, lengths, output_size=rows)
        position = torch.arange(rows, device=device)
        turn = position - (torch.cumsum(lengths, 0) - lengths)[conv_of]  # the message's index in its conversation
        index = starts[conv_of] + turn
        # Plan targets: the next K messages of the same conversation (row 0 and mask 0 past its end).
        ahead = torch.arange(1, self.config.plan_steps + 1, device=device)
        valid = (turn.unsqueeze(1) + ahead) < lengths[conv_of].unsqueeze(1)
        return {
            "pooled": resident["features"][index].float(),
            "coords": resident["coords"][index],
            "phases": resident["phases"][index],
            "homogeneity": resident["homogeneity"][index],
            "patterns": resident["patterns"][index],
            "stylometrics": resident["stylometrics"][index],
            "roles": resident["roles"][index],
            "conversation": conv_of,
            "plan_targets": torch.where(
                valid, position.unsqueeze(1) + ahead, torch.zeros_like(valid, dtype=torch.long)
            ),
            "plan_mask": valid.float(),
        }

    def _forward(self, components, batch):
        z = components.standardize(batch["pooled"])
        output = components(z, batch["coords"], batch["phases"], batch["homogeneity"], standardized=True)
        return z, output

    def _batch_losses(self, components, conversation_ids, keep_outputs: bool = False):
        import torch
        import torch.nn.functional as F

        batch = self._gather(conversation_ids)
        z, out = self._forward(components, batch)
        config = self.config
        # Style: InfoNCE with every other message of the same conversation and role as a positive.
        group = batch["conversation"] * 8 + batch["roles"]
        positives = group[:, None] == group[None, :]
        eye = torch.eye(len(group), dtype=torch.bool, device=group.device)
        positives &= ~eye
        logits = out.style_signature @ out.style_signature.T / config.temperature
        logits = logits.masked_fill(eye, float("-inf"))
        anchors = positives.any(1)
        if anchors.any():
            log_denominator = torch.logsumexp(logits[anchors], dim=1)
            log_numerator = torch.logsumexp(logits[anchors].masked_fill(~positives[anchors], float("-inf")), dim=1)
            style = (log_denominator - log_numerator).mean()
        else:
            style = out.style_signature.sum() * 0.0
        stylometric = (((out.stylometrics - batch["stylometrics"]) * self._stylometric_scale) ** 2).mean()
        # Rare patterns get a heavier positive term (a thresholded F1 would otherwise never fire).
        pattern = F.binary_cross_entropy_with_logits(
            out.pattern_logits, batch["patterns"], pos_weight=self._pattern_pos_weight
        )
        targets = z[batch["plan_targets"]]  # [M, K, hidden]
        cosine = F.cosine_similarity(out.plan_steps, targets, dim=-1)
        mask = batch["plan_mask"]
        planning = ((1 - cosine) * mask).sum() / mask.sum().clamp_min(1.0)
        total = (
            config.weight("style") * style
            + config.weight("stylometric") * stylometric
            + config.weight("pattern") * pattern
            + config.weight("planning") * planning
        )
        losses = {"total": total, "style": style, "stylometric": stylometric, "pattern": pattern, "planning": planning}
        if keep_outputs:
            self._last_outputs = (batch, z, out)
        return losses, len(group)

    def evaluate(self, components, conversation_ids: list[int]) -> tuple[dict, dict, dict]:
        """(losses, metrics with baselines, per-pattern metrics) on these conversations."""
        import numpy as np
        import torch
        import torch.nn.functional as F

        from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
        from cognitivetwin_core.phase2.metrics import pattern_metrics, retrieval_hits

        if not conversation_ids:
            return {}, {}, {}
        was_training = components.training
        components.eval()
        sums: dict[str, float] = {}
        probabilities, labels = [], []
        K = self.config.plan_steps
        step_sum, step_base, step_count = np.zeros(K), np.zeros(K), np.zeros(K)
        hits = anchors = 0
        chance = 0.0
        batches = [
            conversation_ids[i : i + self.config.batch_size]
            for i in range(0, len(conversation_ids), self.config.batch_size)
        ]
        with torch.no_grad():
            for batch_ids in batches:
                losses, _ = self._batch_losses(components, batch_ids, keep_outputs=True)
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + float(value)
                batch, z, out = self._last_outputs
                self._last_outputs = None
                probabilities.append(torch.sigmoid(out.pattern_logits).cpu().numpy())
                labels.append(batch["patterns"].cpu().numpy())
                targets = z[batch["plan_targets"]]
                mask = batch["plan_mask"]
                # Per step k (turn t+k), against "predict the current message" for that same turn.
                step_sum += (F.cosine_similarity(out.plan_steps, targets, dim=-1) * mask).sum(0).cpu().numpy()
                step_base += (
                    (F.cosine_similarity(z.unsqueeze(1).expand_as(targets), targets, dim=-1) * mask)
                    .sum(0)
                    .cpu()
                    .numpy()
                )
                step_count += mask.sum(0).cpu().numpy()
                group = (batch["conversation"] * 8 + batch["roles"]).cpu().numpy()
                h, a, ch = retrieval_hits(out.style_signature.cpu().numpy(), group)
                hits, anchors, chance = hits + h, anchors + a, chance + ch
        components.train(was_training)
        losses = {name: value / len(batches) for name, value in sums.items()}
        patterns = pattern_metrics(
            np.concatenate(probabilities), np.concatenate(labels), self._train_prior, PATTERN_NAMES
        )
        metrics = {
            "pattern_macro_f1": patterns["macro_f1"],
            "pattern_macro_f1_baseline": patterns["macro_f1_baseline"],
            "pattern_macro_auc": patterns["macro_auc"],
            "pattern_macro_auc_baseline": patterns["macro_auc_baseline"],
            "planning_cosine": float(step_sum.sum() / step_count.sum()) if step_count.sum() else None,
            "planning_cosine_baseline": float(step_base.sum() / step_count.sum()) if step_count.sum() else None,
            # Step k looks k turns ahead; None where no validation turn has a turn k ahead.
            "planning_cosine_per_step": [float(a / n) if n else None for a, n in zip(step_sum, step_count)],
            "planning_cosine_baseline_per_step": [float(b / n) if n else None for b, n in zip(step_base, step_count)],
            "style_retrieval": hits / anchors if anchors else None,
            "style_retrieval_chance": chance / anchors if anchors else None,
        }
        return losses, metrics, patterns["per_pattern"]

    def trajectory_ablation(self, components, conversation_ids: list[int], repeats: int = 5) -> dict | None:
        """Each head's held-out metric with the true trajectories and with trajectories
        shuffled across the validation messages (seeded; the mean of `repeats` shuffles):
        {"patterns": {"true", "shuffled"}, "planning": {...}, "style": {...}}."""
        import torch

        if not conversation_ids:
            return None
        data = self._data
        heads = {"patterns": "pattern_macro_f1", "planning": "planning_cosine", "style": "style_retrieval"}
        _, true_metrics, _ = self.evaluate(components, conversation_ids)
        rows = torch.tensor([i for c in conversation_ids for i in range(data.offsets[c], data.offsets[c + 1])])
        generator = torch.Generator().manual_seed(self.config.seed + 7919)
        shuffled: dict[str, list[float]] = {head: [] for head in heads}
        try:
            for _ in range(repeats):
                permuted = rows[torch.randperm(len(rows), generator=generator)]
                swapped = copy.copy(data)
                for name in ("coords", "phases", "homogeneity"):
                    values = getattr(data, name).clone()
                    values[rows] = getattr(data, name)[permuted]
                    setattr(swapped, name, values)
                self._data = swapped
                _, metrics, _ = self.evaluate(components, conversation_ids)
                for head, key in heads.items():
                    if metrics.get(key) is not None:
                        shuffled[head].append(metrics[key])
        finally:
            self._data = data
        return {
            head: {
                "metric": key,
                "true": true_metrics.get(key),
                "shuffled": sum(shuffled[head]) / len(shuffled[head]) if shuffled[head] else None,
            }
            for head, key in heads.items()
        }

    def _feature_statistics(self, conversation_ids: list[int]):
        import numpy as np
        import torch

        cached = self._cached
        hidden = cached.hidden_size
        total = np.zeros(hidden, dtype=np.float64)
        squares = np.zeros(hidden, dtype=np.float64)
        count = 0
        for c in conversation_ids:
            rows = np.asarray(cached.conversation(c), dtype=np.float64)
            total += rows.sum(0)
            squares += (rows * rows).sum(0)
            count += len(rows)
        count = max(count, 1)
        mean = total / count
        variance = np.maximum(squares / count - mean * mean, 0.0)
        return torch.from_numpy(mean).float(), torch.from_numpy(np.sqrt(variance)).float()

    def _save_person_style(self, components, conversations) -> None:
        """The person's style centroid (the mean signature of the twin speaker's messages, train
        and validation) saved with the run (person_style.json), for the playground's style map."""
        import torch

        from cognitivetwin_core.data.twin_speaker import DEFAULT_TWIN_SPEAKER, is_person
        from cognitivetwin_core.phase2.person_style import PersonStyle, centroid_of, save_person_style

        speaker = DEFAULT_TWIN_SPEAKER
        if self.workspace is not None:
            from cognitivetwin_core.data.person_identity import canonical, speaker_links

            speaker = canonical(speaker_links(self.workspace), self.workspace.twin_speaker())
        signatures = []
        components.eval()
        with torch.no_grad():
            for start in range(0, len(conversations), self.config.batch_size):
                ids = list(range(start, min(start + self.config.batch_size, len(conversations))))
                _, out = self._forward(components, self._gather(ids))
                rows = out.style_signature.float().cpu().tolist()
                person = [is_person(m, speaker) for c in ids for m in conversations[c].messages]
                signatures.extend(row for row, mine in zip(rows, person) if mine)
        if not signatures:
            self.run_record["person_style"] = None
            return
        centroid, count = centroid_of(signatures)
        save_person_style(self.output_dir, PersonStyle(speaker, centroid, count))
        self.run_record["person_style"] = {"speaker": speaker, "messages": count}
