"""The Phase 1 tab's GUI-thread controller: dry runs, launches, monitoring, cancel, download.

It drives the core's `Phase1Backend`s (`cognitivetwin_core.phase1.jobs`): every core call is
synchronous and may block on the network or the disk, so each runs on a worker thread
(`asyncio.to_thread`) awaited by a coroutine on the qasync loop; the GUI thread never waits.
Results come back as this object's signals, emitted in the GUI thread.

- Together jobs are watched by one asyncio task per job (`poll` with backoff: quick while
  things move, slower while nothing changes, doubling on transient failures). When a job
  completes its adapter is downloaded and registered; when it ends in any way `jobEnded`
  fires (the tab shows a tray message).
- Monitoring survives a restart: `set_workspace` lists the workspace's unfinished Together
  jobs and watches them again (the records hold everything needed).
- A local LoRA run trains in a supervised child process (`LocalLoraProcess`,
  cognitivetwin_core/phase1/local_lora_process.py): this process never runs a model or
  imports torch. A `BackgroundJob` thread follows the child's messages and hands each to the
  GUI through the job's progress signal; Cancel is a request to the child (the run saves a
  checkpoint and stops at its next step); a child that dies ends the job as failed, in words.
  The local dry run (tokenizer, device) runs in the helper child (`call_in_child`).
- Evaluate runs the same way, in its own supervised child (`EvaluationProcess`).

The Together key is read from the OS keyring (off the GUI thread) each time a manager is
made; tests replace `read_api_key`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.qt.background_job import BackgroundJob
from app.tabs.phase1_evaluate import Phase1Evaluate
from app.tabs.phase1_local_run import Phase1LocalRun
from app.tabs.phase1_log_stamps import clock_stamp
from app.tabs.phase1_monitoring import Phase1Monitoring
from cognitivetwin_core.child_processes import call_in_child
from cognitivetwin_core.errors import CognitiveTwinError, InputError
from cognitivetwin_core.phase1.jobs import DryRun, JobRecord, JobUpdate, Phase1Settings, read_job, read_jobs
from cognitivetwin_core.phase1.local_lora_process import LocalLoraProcess
from cognitivetwin_core.playground.evaluation_process import EvaluationProcess

log = logging.getLogger(__name__)


def read_api_key() -> str | None:
    """The Together key from the OS keyring (raises KeyringUnavailableError with a plain message)."""
    from cognitivetwin_core.connections import secrets

    return secrets.get_secret(secrets.TOGETHER_API_KEY)


class Phase1Controller(Phase1LocalRun, Phase1Monitoring, Phase1Evaluate, QObject):
    """One per Phase 1 tab; lives in the GUI thread."""

    dryRunProgress = Signal(int, int)  # bytes uploaded, of total
    dryRunDone = Signal(object)  # DryRun
    launched = Signal(str)  # job id
    jobUpdated = Signal(object)  # JobUpdate (each monitoring round with something new)
    jobEnded = Signal(object)  # the terminal JobUpdate
    adapterReady = Signal(str, str)  # job id, adapter folder
    lossPoint = Signal(str, int, float)  # local job id, step, loss
    logLine = Signal(str)  # a line for the log pane
    jobsChanged = Signal()  # the workspace's records changed: redraw the table
    failed = Signal(str, str)  # what was being done, the core's plain message
    busyChanged = Signal(bool)  # a dry run / launch / download is in flight
    evaluationProgress = Signal(str, str)  # job id, what the evaluation is doing
    evaluationDone = Signal(str, object)  # job id, the evaluation report (dict)

    # Seconds between polls of a Together job while it moves, and at most while it doesn't.
    poll_interval = 5.0
    max_poll_interval = 60.0
    max_transient_failures = 8
    auto_download = True
    local_options: dict = {}  # keyword arguments for LocalLoraJobs (e.g. max_batch_tokens)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.workspace = None
        self.read_api_key = read_api_key
        self._manager = None
        self._manager_key: str | None = None
        self._manager_lock: asyncio.Lock | None = None  # made on first use, on the running loop
        self.cancel_requested: set[str] = set()  # jobs the user cancelled in this session
        self._local = None
        self._monitors: dict[str, asyncio.Task] = {}
        self._busy = 0
        self._live: dict[str, JobUpdate] = {}  # the latest update of each job this session
        self._step_losses: dict[str, list[float]] = {}  # local jobs: for the loss-trend verdict
        self._ended: set[str] = set()
        self._closed = False
        self.local_job = BackgroundJob(self, name="local LoRA")
        self.local_job_id: str | None = None
        self.local_process: LocalLoraProcess | None = None
        self.local_job.progress.connect(self._on_local_progress)
        self.local_job.succeeded.connect(self._on_local_done)
        self.local_job.failed.connect(self._on_local_failed)
        self.evaluate_job = BackgroundJob(self, name="Phase 1 evaluation")
        self.evaluation_process: EvaluationProcess | None = None
        self.evaluating_job_id: str | None = None
        self.evaluation_samples = 12  # answers the judges compare: fewer make their intervals too wide to say much
        self.evaluate_job.progress.connect(self._on_evaluation_progress)
        self.evaluate_job.succeeded.connect(self._on_evaluation_done)
        self.evaluate_job.failed.connect(self._on_evaluation_failed)
        self.evaluate_job.finished.connect(self._on_evaluation_finished)

    # --- workspace ------------------------------------------------------------------------

    def set_local_device(self, device: str) -> None:
        """Where local runs train from now on ("auto", "cpu", "cuda[:N]", "mps")."""
        self.local_options = {**self.local_options, "device": device}
        if self._local is not None:
            self._local.device = device

    def set_workspace(self, workspace) -> None:
        """Watch `workspace`'s jobs (stops what was going on in the previous one)."""
        if workspace is self.workspace:
            return
        self._stop_everything()
        self.workspace = workspace
        self._manager, self._manager_key, self._local = None, None, None
        self._live.clear()
        self._ended.clear()
        if workspace is not None:
            from cognitivetwin_core.phase1.local_jobs import LocalLoraJobs

            # Marks local runs that were going when the app stopped as interrupted.
            self._local = LocalLoraJobs(workspace, **self.local_options)
            self.jobsChanged.emit()
            self.resume_monitoring()
        else:
            self.jobsChanged.emit()

    def jobs(self) -> list[JobRecord]:
        return read_jobs(self.workspace) if self.workspace is not None else []

    def job(self, job_id: str | None) -> JobRecord | None:
        """The workspace's record of `job_id`, or None (no such job, or no workspace)."""
        return read_job(self.workspace, job_id) if (job_id and self.workspace is not None) else None

    def live_update(self, job_id: str) -> JobUpdate | None:
        return self._live.get(job_id)

    def is_monitoring(self, job_id: str) -> bool:
        return job_id in self._monitors

    def backend(self, name: str):
        if name == "local":
            return self._require_local()
        raise InputError("The Together backend is made on a worker thread: use `await together()`.")

    def _require_workspace(self):
        if self.workspace is None:
            raise InputError("No workspace is open: open or create one from the File menu first.")
        return self.workspace

    def _require_local(self):
        self._require_workspace()
        return self._local

    async def together(self):
        """The Together manager for this workspace, made (off the GUI thread) with the keyring's key."""
        workspace = self._require_workspace()
        key = await asyncio.to_thread(self.read_api_key)
        if self._manager_lock is None:
            self._manager_lock = asyncio.Lock()
        async with self._manager_lock:  # one manager (one reconcile) even when several tasks ask at once
            if self._manager is not None and key == self._manager_key and self._manager.workspace is workspace:
                return self._manager
            from cognitivetwin_core.phase1.together_jobs import TogetherJobManager

            poll = self.poll_interval
            manager = await asyncio.to_thread(lambda: TogetherJobManager(workspace, api_key=key, poll_interval=poll))
            if workspace is not self.workspace:
                raise asyncio.CancelledError()  # the workspace changed meanwhile: this work is void
            self._manager, self._manager_key = manager, key
            return manager

    # --- busy state -------------------------------------------------------------------------

    def _enter(self) -> None:
        self._busy += 1
        if self._busy == 1:
            self.busyChanged.emit(True)

    def _leave(self) -> None:
        self._busy -= 1
        if self._busy == 0:
            self.busyChanged.emit(False)

    def is_busy(self) -> bool:
        return self._busy > 0

    # --- dry run and launch -----------------------------------------------------------------

    async def dry_run(self, backend_name: str, data_path: str | Path, settings: Phase1Settings) -> DryRun | None:
        """Validate, upload (Together), estimate; `dryRunDone` or `failed` follows."""
        self._enter()
        try:
            loop = asyncio.get_running_loop()

            def progress(done: int, total: int) -> None:  # called on the worker thread
                loop.call_soon_threadsafe(self.dryRunProgress.emit, int(done), int(total))

            if backend_name == "together":
                manager = await self.together()
                plan = await asyncio.to_thread(manager.dry_run, data_path, settings, progress=progress)
            else:
                from cognitivetwin_core.phase1.local_plan import plan_local_run

                # Tokenizer and device in the helper child: this process never imports torch.
                workspace, options = self._require_workspace(), self._require_local().options
                plan = await asyncio.to_thread(
                    call_in_child, plan_local_run, str(workspace.path), data_path, settings, **options
                )
        except CognitiveTwinError as exc:
            self.failed.emit("dry run", str(exc))
            return None
        finally:
            self._leave()
        self.dryRunDone.emit(plan)
        return plan

    async def launch(self, plan: DryRun, *, job_id: str | None = None) -> str | None:
        """Start the job `plan` describes (the user has confirmed it); `launched` follows."""
        if plan.backend == "local":
            return self._launch_local(plan, job_id)
        self._enter()
        try:
            manager = await self.together()
            new_id = await asyncio.to_thread(manager.launch, plan)
        except CognitiveTwinError as exc:
            self.failed.emit("launch", str(exc))
            self.jobsChanged.emit()
            return None
        finally:
            self._leave()
        duplicates = manager.duplicates(new_id)
        self.logLine.emit(f"{clock_stamp()} {new_id}: created on Together ({plan.model_id})")
        if duplicates:
            self.failed.emit(
                "launch",
                f"Together created extra jobs {', '.join(duplicates)} for this launch; "
                "cancel them in the table (each costs money).",
            )
        self.launched.emit(new_id)
        self.jobsChanged.emit()
        self.watch(new_id)
        return new_id

    # --- shutdown -----------------------------------------------------------------------------

    def _stop_everything(self) -> None:
        for task in list(self._monitors.values()):
            task.cancel()
        self._monitors.clear()
        if self.evaluate_job.is_running() and self.evaluation_process is not None:
            self.evaluation_process.request_cancel()  # checked between generated tokens and replies
            self.evaluate_job.wait(60_000)
        if self.local_job.is_running():
            # The run saves a checkpoint at its next step and stops; its record says "cancelled".
            if self.local_job_id:
                self.cancel_requested.add(self.local_job_id)
            if self.local_process is not None:
                self.local_process.request_cancel()
            if not self.local_job.wait(120_000):
                log.error("the local LoRA run did not stop within 120 s")

    def shutdown(self) -> None:
        """The window is closing: stop watching (jobs go on at Together) and stop a local run."""
        self._stop_everything()
        self._closed = True  # results still queued for the GUI thread are dropped
        self.workspace = None
        self._manager = self._local = None
