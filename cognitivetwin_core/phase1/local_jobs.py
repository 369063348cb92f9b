"""Phase 1 on this computer as jobs: `LocalLoraJobs(workspace)` is the `Phase1Backend` (see
`jobs.py`) over local LoRA runs (phase1/local_lora.py): `launch` starts the training on a
background thread and `poll`/`wait` report it, like a Together job (phase1/together_jobs.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.atomic_files import write_dir_atomically
from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CancelledError, CognitiveTwinError, InputError
from cognitivetwin_core.phase1.jobs import (
    DryRun,
    JobRecord,
    JobUpdate,
    Phase1Settings,
    ProgressCallback,
    read_job,
    read_jobs,
    validate_chat_jsonl,
)
from cognitivetwin_core.phase1.local_lora import train_local_lora
from cognitivetwin_core.phase1.monitor import Backoff, follow
from cognitivetwin_core.phase1.training_progress import TrainingEvent

log = logging.getLogger(__name__)

# How often waiting on our own run looks whether a stop was asked for.
_CANCEL_CHECK_S = 0.02
_END_JOIN_S = 60.0  # at most this long for a run's thread to free its objects once it has stored its end


def new_local_job_id() -> str:
    return f"local-{uuid.uuid4().hex[:12]}"


def _store(workspace, job_id: str, **fields) -> None:
    fields["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    workspace.upsert_phase1_job(job_id, fields)


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
        self._stops: dict[str, Cancellation] = {}
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

    @property
    def options(self) -> dict:
        """The keyword arguments that make another instance train the same way (in a child process)."""
        return {
            "device": self.device,
            "precision": self.precision,
            "max_batch_tokens": self.max_batch_tokens,
            "checkpoint_every": self.checkpoint_every,
        }

    def _store(self, job_id: str, **fields) -> None:
        _store(self.workspace, job_id, **fields)

    @staticmethod
    def record_failure(workspace, job_id: str, message: str) -> None:
        """A run whose process ended without saying how (killed, out of memory): failed, in words."""
        _store(workspace, job_id, status="error", error=message, eta_seconds=None)

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
        job_id = job_id or new_local_job_id()
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
        stop = Cancellation()
        with self._lock:
            self._stops[job_id] = stop
            self._events[job_id] = []

        def on_event(event: TrainingEvent) -> None:
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
                    cancellation=stop,
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
        cancellation: Cancellation | None = None,
        interval: float = 0.5,
    ) -> JobUpdate:
        thread = self._threads.get(job_id)

        def pause(seconds: float) -> None:
            # Our own run: wake as soon as its thread ends or a stop is asked for, so that a
            # Cancel stops training within a step, not a poll later; another process's: wait.
            if thread is None:
                time.sleep(seconds)
                return
            deadline = time.monotonic() + seconds
            while thread.is_alive() and time.monotonic() < deadline:
                if cancellation is not None and cancellation.cancelled:
                    return
                thread.join(min(_CANCEL_CHECK_S, max(0.0, deadline - time.monotonic())))

        def relay(update: JobUpdate) -> None:
            if on_update and (update.new_events or update.terminal):
                on_update(update)

        update = follow(
            lambda: self.poll(job_id),
            backoff=Backoff(base=interval, maximum=interval, idle_factor=1.0),
            on_update=relay,
            cancellation=cancellation,
            on_stop=lambda: self.cancel(job_id),
            sleep=pause,
        )
        if thread is not None:
            # The run stores its end before its frames (model, optimizer) are freed. A process
            # that exits meanwhile finalizes Python under a thread still in torch's C++ code,
            # which aborts it ("terminate called without an active exception", exit -6).
            thread.join(_END_JOIN_S)
            if thread.is_alive():
                log.warning("local LoRA job %s: its thread still runs %.0f s after its end", job_id, _END_JOIN_S)
        return update

    def cancel(self, job_id: str) -> JobUpdate:
        record = self._record(job_id)
        stop = self._stops.get(job_id)
        if stop is None or record.status not in ("pending", "running"):
            raise InputError(f"Local job {job_id} is {record.status}; there is nothing to cancel here.")
        stop.cancel()
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
