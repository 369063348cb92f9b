"""The Playground tab's GUI-thread controller.

`PlaygroundController` runs the core's `PlaygroundSession` work
(`cognitivetwin_core.playground.session`) in the analysis child process
(`PlaygroundProcess`, playground/analysis_process.py: the window's process never imports
torch), followed by a `BackgroundJob`, one task at a time, and coalesces requests: while a
task runs, only the newest pending request of each slot ("main", "compare") is kept, so
dragging a slider or typing never queues stale work.
Signals: `progress(text, fraction|None)`, `runLoaded(RunMap)`,
`resultReady(AnalysisResult)`, `failed(message)`, `busyChanged(bool)`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.qt.background_job import BackgroundJob
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.playground.analysis_process import PlaygroundProcess
from cognitivetwin_core.playground.session import (  # noqa: F401 - re-exported for the tab and tests
    NEIGHBOURS_PER_STEP,
    AnalysisRequest,
    AnalysisResult,
    LoadProgress,
    PlaygroundTask,
    RunChoice,
    RunLoaded,
    describe_source,
    model_runs,
    parse_context,
    preferred_run,
    result_numbers,
)
from cognitivetwin_core.supervised_child import RequestDone

log = logging.getLogger(__name__)


def follow_task(progress, cancelled, process: PlaygroundProcess, task: PlaygroundTask):
    """The job: hand the task's events in the analysis child to the GUI; its result."""
    for message in process.run(task):
        if isinstance(message, RequestDone):
            return message.result
        progress(message)
    raise CognitiveTwinError("The analysis process ended the task without a result; the log file has the details.")


# ----- the controller (GUI thread) ------------------------------------------------------------


class PlaygroundController(QObject):
    progress = Signal(str, object)
    runLoaded = Signal(object)
    resultReady = Signal(object)
    failed = Signal(str)
    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.process = PlaygroundProcess()
        self.last_run_map = None  # the RunMap of the run loaded last (as the child sent it)
        self.job = BackgroundJob(self, name="playground")
        self.job.progress.connect(self._on_progress)
        self.job.succeeded.connect(self._on_succeeded)
        self.job.failed.connect(self._on_failed)
        self.job.finished.connect(self._next)
        self._pending_load: tuple | None = None
        self._pending: dict[str, tuple] = {}
        self._closing = False

    def load_run(self, run_dir, workspace_path) -> None:
        self._pending_load = (Path(run_dir), workspace_path)
        self._next()

    def request(self, request: AnalysisRequest, workspace_path) -> None:
        self._pending[request.slot] = (request, workspace_path)
        self._next()

    def is_busy(self) -> bool:
        return self.job.is_running()

    def shutdown(self) -> None:
        self._closing = True
        self._pending.clear()
        self._pending_load = None
        self.job.cancel()
        self.process.request_stop()  # checked between the steps of a load
        if not self.job.wait(10_000):  # loading the model itself does not stop: end its child
            self.process.kill()
        # A QThread destroyed while running aborts the process, so wait it out.
        if not self.job.wait(60_000):
            log.warning("the playground's background work did not stop within a minute")
        self.process.close()

    @Slot()
    def _next(self) -> None:
        if self._closing or self.job.is_running():
            return
        if self._pending_load is not None:
            run_dir, workspace_path = self._pending_load
            self._pending_load = None
            task = PlaygroundTask("load", Path(run_dir), _path(workspace_path))
        else:
            slot = next((s for s in ("main", "compare") if s in self._pending), None)
            if slot is None:
                self.busyChanged.emit(False)
                return
            request, workspace_path = self._pending.pop(slot)
            task = PlaygroundTask("analyze", Path(request.run_dir), _path(workspace_path), request)
        if not self.process.has_loaded(task.run_dir, task.workspace_path):
            self.progress.emit("Loading the model…", None)
        self.busyChanged.emit(True)
        self.job.start(follow_task, self.process, task)

    @Slot(object)
    def _on_progress(self, event) -> None:
        if isinstance(event, RunLoaded):
            self.last_run_map = event.loaded
            self.runLoaded.emit(event.loaded)
        elif isinstance(event, LoadProgress):
            self.progress.emit(event.text, event.fraction)

    @Slot(object)
    def _on_succeeded(self, outcome) -> None:
        if isinstance(outcome, AnalysisResult):
            self.resultReady.emit(outcome)
        elif isinstance(outcome, RunLoaded):
            self.last_run_map = outcome.loaded
            self.runLoaded.emit(outcome.loaded)

    @Slot(object)
    def _on_failed(self, exc) -> None:
        from cognitivetwin_core.models.catalog import UnknownBaseModelError

        # A run whose base model is gone or unknown is fixable by the user (it is a
        # ValueError in the core, not a CognitiveTwinError): say it inline.
        if isinstance(exc, (CognitiveTwinError, UnknownBaseModelError)):
            self.failed.emit(str(exc))
            return
        self.failed.emit(f"The analysis failed unexpectedly ({type(exc).__name__}: {exc}). Details are in the log.")
        from app.dialogs.errors import report_unexpected

        report_unexpected(exc, context="playground")


def _path(workspace_path) -> str | None:
    return str(workspace_path) if workspace_path is not None else None
