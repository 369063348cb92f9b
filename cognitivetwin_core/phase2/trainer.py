"""The Phase 2 trainer: frozen base -> cached pooled turns -> trained adapter and heads.

A plain object. `run()` is a generator of events (`phase2/events.py`); the CLI draws progress
bars from them, and the app runs the trainer in a child process (`subprocess_runner.py`) whose
events its supervising thread turns into signals. The trainer's parts live beside it, one
module per seam: `training_data.py`, `run_folder.py`, `epoch_loop.py`, `batch_losses.py`,
`evaluation.py` (mixins over the trainer's state); this module keeps control, the run and
the encoding. Control from any thread:
`request_stop(save=True)` (finish the current step, save a usable model, outcome
"stopped") and `request_cancel()` (discard the run, outcome "cancelled"); both are flags
checked before every encoding batch and every training step.

    config = Phase2Config(base_model="smollm2-135m", output_dir="runs/a", epochs=10)
    trainer = Phase2Trainer(config, conversations=[...])   # or workspace=Workspace|path (config.source:
                                                           # one source of it), or data_file=path
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

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.errors import CognitiveTwinError, InputError
from cognitivetwin_core.phase2.batch_losses import BatchLosses
from cognitivetwin_core.phase2.config import DEFAULT_LOSS_WEIGHTS, Phase2Config
from cognitivetwin_core.phase2.epoch_loop import EpochLoop, RunFailure, StopRun
from cognitivetwin_core.phase2.evaluation import Evaluation
from cognitivetwin_core.phase2.events import (
    CheckpointEvent,
    EncodingEvent,
    EpochEvent,
    FinishedEvent,
    StepEvent,
)
from cognitivetwin_core.phase2.run_folder import RunFolder, library_versions, now_utc
from cognitivetwin_core.phase2.training_data import TrainingData

# The trainer's public names, importable from here as before the split.
__all__ = [
    "DEFAULT_LOSS_WEIGHTS",
    "CheckpointEvent",
    "EncodingEvent",
    "EpochEvent",
    "FinishedEvent",
    "Phase2Config",
    "Phase2Trainer",
    "StepEvent",
]

log = logging.getLogger(__name__)


class Phase2Trainer(TrainingData, RunFolder, EpochLoop, BatchLosses, Evaluation):
    def __init__(
        self,
        config: Phase2Config,
        *,
        conversations: Sequence[Conversation] | None = None,
        workspace=None,
        data_file: str | Path | None = None,
    ):
        sources = sum(x is not None for x in (conversations, workspace, data_file))
        if sources != 1:
            raise InputError("Give Phase 2 exactly one data source: conversations, a workspace or a data file.")
        if config.source is not None and workspace is None:
            raise InputError(
                f"The source “{config.source}” names conversations of a workspace: give the workspace too."
            )
        self.config = config
        self._conversations = list(conversations) if conversations is not None else None
        self._workspace_arg = workspace
        self.workspace = None
        self.data_file = Path(data_file) if data_file is not None else None
        self._lock = threading.Lock()
        self._save_on_stop = True
        self._cancel_requested = False
        # Set by request_stop and request_cancel; the flags above say which (save or discard).
        self.cancellation = Cancellation()
        self.output_dir: Path | None = None
        self.run_id: str | None = None
        self.run_record: dict = {}

    # ----- control (thread-safe) ---------------------------------------------------------------

    def request_stop(self, save: bool = True) -> None:
        with self._lock:
            self._save_on_stop = save
            self.cancellation.cancel()

    def request_cancel(self) -> None:
        with self._lock:
            self._cancel_requested = True
            self.cancellation.cancel()

    def _check_flags(self) -> None:
        if self.cancellation.cancelled:
            raise StopRun()

    # ----- data ---------------------------------------------------------------------------------

    def run(self) -> Iterator[object]:
        """Train; yield events. Raises CognitiveTwinError for unusable inputs (before writing)."""
        config = self.config
        from cognitivetwin_core.models.devices import configure_threads, select_device

        device = select_device(config.device)
        self.config = config = config.resolve_for_device(device)
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
                "started_at": self.run_record.get("started_at") or now_utc(),
                "ended_at": None,
                "data": {**source, "hash": digest, "conversations": len(conversations), "messages": message_count},
                "base_model": config.base_model,
                "adapter": config.adapter_dir,
                "parameters": asdict(config),
                "device": device,
                "torch_threads": threads,
                "versions": library_versions(),
                "output_dir": str(self.output_dir),
            }
        )
        self._write_run_record()
        try:
            self._start_annotating(conversations)  # on a thread, while the base encodes
            cached, hit = yield from self._encode(conversations, device)
            if cached is None:
                raise StopRun()
            self.run_record["feature_cache"] = {"path": str(cached.path), "hit": hit}
            yield from self._train(conversations, cached, device, digest)
        except StopRun:
            yield self._finish_stopped()
        except RunFailure as failure:
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
            cancellation=self.cancellation,
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
