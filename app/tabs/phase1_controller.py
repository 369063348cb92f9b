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
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.qt.background_job import BackgroundJob
from app.qt.tasks import start_task
from cognitivetwin_core.child_processes import call_in_child
from cognitivetwin_core.durations import format_duration
from cognitivetwin_core.errors import CognitiveTwinError, InputError
from cognitivetwin_core.phase1.jobs import (
    DryRun,
    JobRecord,
    JobUpdate,
    Phase1Settings,
    read_job,
    read_jobs,
    unfinished_jobs,
)
from cognitivetwin_core.phase1.local_lora_process import LocalJobLaunched, LocalLoraProcess
from cognitivetwin_core.phase1.monitor import Backoff, is_transient
from cognitivetwin_core.playground.evaluation_process import EvaluationProcess, EvaluationProgress, EvaluationReport

log = logging.getLogger(__name__)


def read_api_key() -> str | None:
    """The Together key from the OS keyring (raises KeyringUnavailableError with a plain message)."""
    from cognitivetwin_core.connections import secrets

    return secrets.get_secret(secrets.TOGETHER_API_KEY)


def parse_time(value) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# ----- the local run, as a plain function for BackgroundJob ------------------------------------


def follow_local_process(progress, cancellation, process: LocalLoraProcess) -> JobUpdate | None:
    """Hand each message of the local run's child to the GUI; its last (terminal) update."""
    last = None
    for message in process.run():
        progress(message)
        last = message
    return last


def phase2_run_for_adapter(workspace, adapter_dir: str | Path) -> str | None:
    """The newest Phase 2 run of the workspace trained on this adapter (its style head scores
    the evaluation's replies); None if there is none."""
    from cognitivetwin_core.phase2.components_folder import holds_components, read_components_config
    from cognitivetwin_core.phase2.runs import list_runs

    wanted = Path(adapter_dir).resolve()
    for record in list_runs(workspace):  # newest first
        folder = record.output_dir
        if not folder or not holds_components(folder):
            continue
        try:
            adapter = read_components_config(folder).get("adapter")
        except CognitiveTwinError:
            continue
        if adapter and Path(adapter).resolve() == wanted:
            return str(folder)
    return None


def run_evaluation(progress, cancellation, process: EvaluationProcess) -> dict:
    """The Evaluate button's job: the twin against its base on held-out replies (evaluation.json),
    computed in the process's child; this thread hands its progress to the GUI."""
    for message in process.run():
        if isinstance(message, EvaluationProgress):
            progress(message.text)
        elif isinstance(message, EvaluationReport):
            return message.report
    raise CognitiveTwinError("The evaluation ended without a report; the log file has the details.")


class Phase1Controller(QObject):
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
        self.logLine.emit(f"{_stamp()} {new_id}: created on Together ({plan.model_id})")
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

    def _launch_local(self, plan: DryRun, job_id: str | None) -> str | None:
        try:
            backend = self._require_local()
        except CognitiveTwinError as exc:
            self.failed.emit("launch", str(exc))
            return None
        if self.local_job.is_running():
            self.failed.emit("launch", "A local run is already going: wait for it to end or cancel it first.")
            return None
        self.local_process = LocalLoraProcess(self.workspace, plan, job_id=job_id, options=backend.options)
        self.local_job_id = self.local_process.job_id
        self.local_job.start(follow_local_process, self.local_process)
        return self.local_job_id

    async def resume_local(self, job_id: str) -> str | None:
        """Launch a stopped local run again under its id: it resumes from its last checkpoint."""
        record = self.job(job_id)
        if record is None or record.backend != "local":
            self.failed.emit("resume", f"No local job {job_id} in this workspace.")
            return None
        known = Phase1Settings.__dataclass_fields__
        stored = {k: v for k, v in record.settings.items() if k in known}
        if stored.get("target_modules") is not None:
            stored["target_modules"] = tuple(stored["target_modules"])
        settings = Phase1Settings(**stored)
        plan = await self.dry_run("local", record.data_path or "", settings)
        if plan is None:
            return None
        return self._launch_local(plan, job_id)

    # --- local run relays (GUI thread) --------------------------------------------------------

    @Slot(object)
    def _on_local_progress(self, message) -> None:
        if isinstance(message, LocalJobLaunched):
            job_id = message.job_id
            self._ended.discard(job_id)  # a resumed run ends (and is announced) again
            self.cancel_requested.discard(job_id)
            self.logLine.emit(f"{_stamp()} {job_id}: local LoRA started")
            self.launched.emit(job_id)
            self.jobsChanged.emit()
        elif isinstance(message, JobUpdate):
            self._relay_update(message)

    @Slot(object)
    def _on_local_done(self, update: JobUpdate | None) -> None:
        if update is not None:
            self._end(update)

    @Slot(object)
    def _on_local_failed(self, exc) -> None:
        job_id = self.local_job_id
        message = str(exc) if isinstance(exc, CognitiveTwinError) else f"The local run stopped unexpectedly: {exc}"
        record = self.job(job_id)
        if record is not None and record.terminal:
            # e.g. Cancel raced the run's own end: the record says how it really ended.
            self._end(JobUpdate(job_id, record.status, message=record.error or ""))
            return
        self.failed.emit("local run", message)
        self.jobsChanged.emit()

    # --- monitoring ---------------------------------------------------------------------------

    def resume_monitoring(self) -> list[str]:
        """Watch every unfinished Together job of the workspace again (after a restart)."""
        records = self.jobs()
        unfinished = unfinished_jobs(records, "together")
        if any(r.is_intent and r.status == "creating" for r in records):
            # The app stopped while creating a job: making the manager settles it (see together_jobs).
            start_task(self._reconcile(), name="reconcile Phase 1 launches")
        for job_id in unfinished:
            record = self.job(job_id)
            status = record.status if record is not None else None
            self.logLine.emit(f"{_stamp()} {job_id}: resumed watching (last known status: {status})")
            self.watch(job_id)
        # A job that completed but whose download failed or never ran: fetch it now.
        if self.auto_download:
            for record in records:
                if record.backend == "together" and record.status == "completed" and not record.adapter_path:
                    start_task(self.download(record.job_id), name=f"download {record.job_id}")
        return unfinished

    async def _reconcile(self) -> None:
        try:
            manager = await self.together()
        except CognitiveTwinError as exc:
            self.failed.emit(
                "monitor", f"A launch was interrupted when the app stopped and could not be checked: {exc}"
            )
            return
        self.jobsChanged.emit()
        for job_id in manager.unfinished_jobs():
            self.watch(job_id)

    def watch(self, job_id: str) -> None:
        if job_id in self._monitors:
            return
        self._monitors[job_id] = start_task(self._monitor(job_id, self.workspace), name=f"watch {job_id}")

    async def _monitor(self, job_id: str, workspace) -> None:
        from cognitivetwin_core.phase1.together_errors import TogetherServiceError

        backoff = Backoff(self.poll_interval, self.max_poll_interval, max_failures=self.max_transient_failures)
        try:
            while workspace is self.workspace:
                try:
                    manager = await self.together()
                    update = await asyncio.to_thread(manager.poll, job_id)
                except TogetherServiceError as exc:
                    delay = backoff.after_failure(is_transient(exc))
                    if delay is None:
                        self.failed.emit(
                            "monitor",
                            f"{exc} (Stopped watching job {job_id}; it goes on at "
                            "Together. Reopen the workspace to watch it again.)",
                        )
                        return
                    self.logLine.emit(f"{_stamp()} {job_id}: {exc} Retrying in {format_duration(delay)}.")
                    await asyncio.sleep(delay)
                    continue
                except CognitiveTwinError as exc:
                    self.failed.emit("monitor", str(exc))
                    return
                if workspace is not self.workspace:
                    return
                delay = backoff.after_update(update)
                self._relay_update(update)
                if update.terminal:
                    await self._finish_together(update)
                    return
                await asyncio.sleep(delay)
        finally:
            if self._monitors.get(job_id) is asyncio.current_task():
                del self._monitors[job_id]

    def _relay_update(self, update: JobUpdate) -> None:
        if self._closed:
            return
        self._live[update.job_id] = update
        for event in update.new_events:
            kind = str(event.get("type") or "")
            if kind == "step" and event.get("loss") is not None:
                self._step_losses.setdefault(update.job_id, []).append(float(event["loss"]))
                self.lossPoint.emit(update.job_id, int(event.get("step") or 0), float(event["loss"]))
                continue  # one line per step would drown the log; the plot shows them
            text = str(event.get("message") or kind.replace("_", " "))
            if kind == "checkpoint":  # local runs: the message is the checkpoint's folder
                text = "checkpoint saved"
            elif kind == "epoch":
                loss = event.get("loss")
                text = f"epoch {event.get('epoch')} done" + (
                    f", loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
                )
            elif kind == "done":
                text = "training done, adapter written"
                losses = self._step_losses.pop(update.job_id, [])
                if len(losses) >= 2:
                    from cognitivetwin_core.training_verdicts import MIN_STEPS_FOR_A_TREND, loss_trend

                    text += ". " + loss_trend(losses, min_points=MIN_STEPS_FOR_A_TREND).message
            extra = f" (step {event['step']})" if event.get("step") not in (None, "") and kind != "start" else ""
            self.logLine.emit(f"{_event_stamp(event)} {update.job_id}: {text}{extra}")
        self.jobUpdated.emit(update)
        self.jobsChanged.emit()

    async def _finish_together(self, update: JobUpdate) -> None:
        if update.status == "completed" and self.auto_download:
            record = self.job(update.job_id)
            if record is None or not record.adapter_path:
                await self.download(update.job_id)
        self._end(update)

    def _end(self, update: JobUpdate) -> None:
        if self._closed or update.job_id in self._ended:
            return
        self._ended.add(update.job_id)
        self._live[update.job_id] = update
        if update.failed and update.message and update.job_id not in self.cancel_requested:
            self.failed.emit("job", update.message)
        self.logLine.emit(f"{_stamp()} {update.job_id}: {update.status}")
        self.jobEnded.emit(update)
        self.jobsChanged.emit()

    # --- cancel and download ------------------------------------------------------------------

    async def cancel(self, job_id: str) -> None:
        record = self.job(job_id)
        if record is None:
            self.failed.emit("cancel", f"No job {job_id} in this workspace.")
            return
        self.cancel_requested.add(job_id)
        if record.backend == "local":
            if self.local_job.is_running() and job_id == self.local_job_id and self.local_process is not None:
                self.logLine.emit(f"{_stamp()} {job_id}: cancelling (the run stops after its current step)")
                self.local_process.request_cancel()
            else:
                self.failed.emit("cancel", f"Local job {job_id} is not running in this window; nothing to cancel.")
            return
        self._enter()
        try:
            manager = await self.together()
            update = await asyncio.to_thread(manager.cancel, job_id)
        except CognitiveTwinError as exc:
            self.failed.emit("cancel", str(exc))
            return
        finally:
            self._leave()
        self.logLine.emit(f"{_stamp()} {job_id}: cancel requested ({update.status})")
        self.jobsChanged.emit()
        self.watch(job_id)

    async def download(self, job_id: str) -> Path | None:
        """Download a completed Together job's adapter, extract it safely and register it."""
        self._enter()
        self.logLine.emit(f"{_stamp()} {job_id}: downloading the adapter")
        try:
            manager = await self.together()
            folder = await asyncio.to_thread(manager.download, job_id)
        except CognitiveTwinError as exc:
            self.failed.emit("download", f"{exc} Press “Download & register” to try again.")
            self.jobsChanged.emit()
            return None
        finally:
            self._leave()
        self.logLine.emit(f"{_stamp()} {job_id}: adapter registered in the workspace ({folder})")
        self.adapterReady.emit(job_id, str(folder))
        self.jobsChanged.emit()
        return folder

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(self, job_id: str) -> bool:
        """Evaluate a finished job's adapter against its base, off the GUI thread."""
        workspace = self._require_workspace()
        record = read_job(workspace, job_id)
        adapter = record.adapter_path if record is not None else None
        if not adapter or not Path(adapter).is_dir():
            self.failed.emit("evaluate", f"{job_id} has no adapter on this computer yet: download it first.")
            return False
        if self.evaluate_job.is_running():
            return False
        self.evaluating_job_id = job_id
        run_dir = phase2_run_for_adapter(workspace, adapter)
        self.evaluation_process = EvaluationProcess(
            adapter, workspace.path, model_dir=run_dir, samples=self.evaluation_samples, max_new_tokens=64
        )
        self.evaluate_job.start(run_evaluation, self.evaluation_process)
        self.jobsChanged.emit()
        return True

    @Slot(object)
    def _on_evaluation_progress(self, text) -> None:
        if self.evaluating_job_id:
            self.evaluationProgress.emit(self.evaluating_job_id, str(text))

    @Slot(object)
    def _on_evaluation_done(self, report) -> None:
        if self.evaluating_job_id and not self._closed:
            self.evaluationDone.emit(self.evaluating_job_id, report)

    @Slot(object)
    def _on_evaluation_failed(self, exc) -> None:
        if self._closed:
            return
        message = str(exc) if isinstance(exc, CognitiveTwinError) else f"The evaluation failed unexpectedly ({exc})."
        self.failed.emit("evaluate", message)

    @Slot()
    def _on_evaluation_finished(self) -> None:
        self.evaluating_job_id = None
        if not self._closed:
            self.jobsChanged.emit()

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


def _stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _event_stamp(event: dict) -> str:
    ts = parse_time(event.get("created_at"))
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else _stamp()
