"""A Phase 2 run's output folder: deciding and checking it, run.json, metrics.json, the
outcome, discarding a cancelled run."""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.atomic_files import write_json_atomically
from cognitivetwin_core.errors import CognitiveTwinError, InputError
from cognitivetwin_core.models.training import fingerprint_changes, resume_mismatch_error
from cognitivetwin_core.phase2.epoch_loop import TrainingState
from cognitivetwin_core.phase2.events import FinishedEvent
from cognitivetwin_core.phase2.runs import METRICS_FILE, RUN_FILE, read_run_file, write_run_file

log = logging.getLogger(__name__)


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def library_versions() -> dict:
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for name in ("cognitivetwin-studio", "torch", "transformers", "peft", "safetensors", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class RunFolder:
    """Phase2Trainer's run-folder part (a mixin: it reads the trainer's config and state)."""

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
        from cognitivetwin_core.phase2.checkpoint import find_checkpoint

        if config.resume and kind == PHASE2_RUN and find_checkpoint(output):
            self.run_record = read_run_file(output) or {}
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
                for name in (RUN_FILE, METRICS_FILE, CONFIG_NAME, WEIGHTS_NAME):
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
        write_run_file(self.output_dir, self.run_record, self.workspace)

    def _record_outcome(self, outcome: str, message: str) -> None:
        self.run_record.update({"status": outcome, "outcome": outcome, "message": message, "ended_at": now_utc()})
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

    def _write_metrics(self, state: TrainingState) -> None:
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
        write_json_atomically(self.output_dir / METRICS_FILE, payload, default=str)

    # ----- tensors for a batch of conversations ------------------------------------------------
