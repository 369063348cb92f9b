"""The Phase 2 tab's GUI-thread controller: one training run at a time, in a child process.

The training itself (model load, encoding, every step) runs in a child process
(`cognitivetwin_core.phase2.subprocess_runner.Phase2TrainerProcess`, spawned, never
forked): in this process it would hold the interpreter (the GIL) for long stretches and
the window would stutter (docs/gui-responsiveness.md). A QThread supervises it:
`run_trainer` (below) iterates the runner's events on the worker thread of the app's
`BackgroundJob` (a parentless worker object on a QThread, relayed by a GUI-thread
controller: connections made before the thread starts, a direct connection for
finished -> quit, wait before the last reference). Every event is relayed here, in the
GUI thread, as one of this object's typed signals; tests and the tab wait on these, never
on the worker's.

Stop & save and Cancel are messages to the child (`request_stop(save=True)`,
`request_cancel()`), which sets the trainer's flags there, checked before every encoding
batch and every training step. A child that dies ends the run as "failed". The trainer is
told to leave the GUI a core (`leave_one_core_free`, torch threads = cores - 1).

    controller = Phase2Controller(parent=tab)
    controller.stepDone.connect(...)          # StepEvent
    controller.runFinished.connect(...)       # FinishedEvent (completed/stopped/cancelled/failed)
    controller.failed.connect(...)            # str: the inputs were unusable (nothing written)
    controller.start(Phase2Config(...), workspace=ws)
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Signal, Slot

from app.qt.background_job import BackgroundJob
from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CognitiveTwinError

# At import, not when a run starts: the first import of multiprocessing's spawning
# modules would hold the interpreter while the window waits.
from cognitivetwin_core.phase2.subprocess_runner import Phase2TrainerProcess

log = logging.getLogger(__name__)


def run_trainer(progress, cancellation: Cancellation, trainer):
    """The worker-thread body: iterate the child's events, hand each to the GUI thread."""
    finished = None
    for event in trainer.run():
        if cancellation.cancelled:  # BackgroundJob.cancel() (shutdown): the trainer discards the run
            trainer.request_cancel()
        progress(event)
        if event.kind == "finished":
            finished = event
    return finished


class Phase2Controller(QObject):
    """Owns the running trainer and its thread; lives in the GUI thread."""

    runStarted = Signal(object)  # the Phase2Trainer (its config, run_id once known)
    encodingProgress = Signal(object)  # EncodingEvent
    stepDone = Signal(object)  # StepEvent
    epochDone = Signal(object)  # EpochEvent
    checkpointSaved = Signal(object)  # CheckpointEvent
    runFinished = Signal(object)  # FinishedEvent
    failed = Signal(str)  # a plain message: the inputs were unusable or the run crashed
    runningChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.trainer = None  # the Phase2TrainerProcess: run_id, output_dir, run_record as the child reports them
        self.started_at: float | None = None
        self.stop_requested: str | None = None  # None, "stop", "stop-nosave" or "cancel"
        self.last_finished = None
        self._job = BackgroundJob(self, name="Phase 2 training")
        self._job.progress.connect(self._on_event)
        self._job.succeeded.connect(self._on_done)
        self._job.failed.connect(self._on_failed)
        self._job.cancelled.connect(self._on_cancelled)
        self._job.finished.connect(self._on_thread_finished)

    # --- control ----------------------------------------------------------------------------

    def is_running(self) -> bool:
        return self._job.is_running()

    def start(self, config, *, workspace=None, conversations=None, data_file=None, processes: int = 1) -> bool:
        """Start a run; False (and `failed` emitted) when the settings are unusable. `processes`
        > 1: the encoding pass runs on that many GPUs (one process each), then one trains."""
        if self.is_running():
            raise RuntimeError("a Phase 2 run is already in progress")
        config = replace(config, leave_one_core_free=True)  # the GUI keeps a core
        try:
            trainer = Phase2TrainerProcess(
                config, workspace=workspace, conversations=conversations, data_file=data_file, processes=processes
            )
        except CognitiveTwinError as exc:
            self.failed.emit(str(exc))
            return False
        self.trainer = trainer
        self.stop_requested = None
        self.last_finished = None
        self.started_at = time.monotonic()
        self._job.start(run_trainer, trainer)
        self.runStarted.emit(trainer)
        self.runningChanged.emit(True)
        return True

    def request_stop(self, save: bool = True) -> None:
        """Finish the current step, save a usable model (when `save`), end as "stopped"."""
        if self.trainer is not None and self.is_running():
            self.stop_requested = "stop" if save else "stop-nosave"
            self.trainer.request_stop(save=save)

    def request_cancel(self) -> None:
        """Discard the run: the trainer removes what it wrote, ends as "cancelled"."""
        if self.trainer is not None and self.is_running():
            self.stop_requested = "cancel"
            self.trainer.request_cancel()

    def wait(self, timeout_ms: int = 120_000) -> bool:
        """Block until the training thread has stopped (shutdown only)."""
        return self._job.wait(timeout_ms)

    def worker_pid(self) -> int | None:
        """The training process while it runs (its memory is the run's)."""
        return self.trainer.pid if self.trainer is not None and self.is_running() else None

    def shutdown(self, *, save: bool = True, timeout_ms: int = 120_000) -> bool:
        """Stop (saving, or discarding when not `save`) and wait for the thread; True when it stopped."""
        if not self.is_running():
            return True
        if save:
            self.request_stop(save=True)
        else:
            self.request_cancel()
            self._job.cancel()
        stopped = self._job.wait(timeout_ms)
        if not stopped and self.trainer is not None:
            # The child did not stop when asked: end it (the run ends as "failed").
            log.error("the Phase 2 training process did not stop within %d ms; killing it", timeout_ms)
            self.trainer.kill()
            stopped = self._job.wait(30_000)
        if not stopped:
            log.error("the Phase 2 thread did not stop within %d ms", timeout_ms)
            return False
        # Deliver the run's last relayed events (queued to the GUI thread) now, so that the
        # run has finished, for the caller and for every listener, when this returns.
        QCoreApplication.sendPostedEvents(self._job, QEvent.Type.MetaCall)
        return True

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_at if self.started_at is not None else 0.0

    # --- relays (GUI thread) ------------------------------------------------------------------

    @Slot(object)
    def _on_event(self, event) -> None:
        kind = getattr(event, "kind", None)
        if kind == "encoding":
            self.encodingProgress.emit(event)
        elif kind == "step":
            self.stepDone.emit(event)
        elif kind == "epoch":
            self.epochDone.emit(event)
        elif kind == "checkpoint":
            self.checkpointSaved.emit(event)
        elif kind == "finished":
            self.last_finished = event

    @Slot(object)
    def _on_done(self, finished) -> None:
        if finished is None:
            self.failed.emit("The Phase 2 run ended without a result; see the log for details.")
            return
        self.runFinished.emit(finished)

    @Slot(object)
    def _on_failed(self, exc) -> None:
        if isinstance(exc, CognitiveTwinError):
            message = str(exc)
        else:
            message = f"Phase 2 training stopped on an unexpected error: {exc!r}. The log file has the details."
        self.failed.emit(message)

    @Slot()
    def _on_cancelled(self) -> None:
        # Only via BackgroundJob's CancelledError path, which run_trainer does not raise;
        # kept so an unexpected path still ends the run visibly.
        if self.last_finished is not None:
            self.runFinished.emit(self.last_finished)

    @Slot()
    def _on_thread_finished(self) -> None:
        self.runningChanged.emit(False)
