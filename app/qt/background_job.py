"""Long CPU work off the GUI thread: a plain function on a QThread, observed from the GUI.

The work is a plain function `fn(progress, cancellation, *args)` (Orange3's shape): it calls
`progress(value)` with anything worth showing and checks the core's `Cancellation` every step
(`cancellation.cancelled`, `raise_if_cancelled`, or hands it on to core work that takes one:
threads cannot be killed, docs/qt.md §9). `BackgroundJob` is the GUI-thread controller: it owns the
QThread and a parentless worker object, relays the worker's signals through its own bound
slots so they run in the GUI thread (docs/qt.md §3-4), connects everything before the thread
starts (§7), quits the thread through a direct connection (§5) and waits for it before the
last reference goes (§8). Wait on the controller's signals in tests, never the worker's.

    job = BackgroundJob(parent=self)
    job.progress.connect(self.on_progress)      # any object the function reported
    job.succeeded.connect(self.on_done)         # the function's return value
    job.failed.connect(self.on_error)           # the exception it raised
    job.cancelled.connect(self.on_cancelled)
    job.start(run_import, workspace_path, source)
    ...
    job.cancel()

A `CognitiveTwinError` raised by the function is a user-fixable error: show its message
inline. `cognitivetwin_core.errors.CancelledError` raised after `cancel()` ends as
`cancelled`, not `failed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CancelledError

log = logging.getLogger(__name__)


class _Worker(QObject):
    """Runs in the job's thread; it must have no parent or moveToThread fails (§8)."""

    progress = Signal(object)
    done = Signal(object)
    error = Signal(object)
    finished = Signal()

    def __init__(self, fn: Callable, args: tuple, cancellation: Cancellation):
        super().__init__()
        self._fn = fn
        self._args = args
        self._cancellation = cancellation

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self.progress.emit, self._cancellation, *self._args)
        except BaseException as exc:  # noqa: BLE001 - everything must reach the controller
            self.error.emit(exc)
        else:
            self.done.emit(result)
        finally:
            self.finished.emit()


class _ThreadKeeper(QObject):
    """Holds every running job's thread and worker until the thread has stopped. A job is
    deleted with its owner (a widget closed, or a test's widget freed) while its function may
    still run; a QThread destroyed while running aborts the process (docs/qt.md §18), so the
    last reference goes here, in the GUI thread, after `wait()`."""

    def __init__(self) -> None:
        super().__init__()
        self._running: dict[int, tuple[QThread, _Worker]] = {}

    def keep(self, thread: QThread, worker: _Worker) -> None:
        self._running[id(thread)] = (thread, worker)
        thread.finished.connect(self._release)  # queued to this GUI-thread object (§3)

    def running(self) -> int:
        return len(self._running)

    @Slot()
    def _release(self) -> None:
        thread = self.sender()
        kept = self._running.get(id(thread))
        if kept is None:
            return
        kept[0].wait()  # finished comes before the thread has fully stopped (§8)
        del self._running[id(thread)]


_keeper: _ThreadKeeper | None = None


def _thread_keeper() -> _ThreadKeeper:
    global _keeper
    if _keeper is None:  # first made by a `start()`, so it lives in the GUI thread
        _keeper = _ThreadKeeper()
    return _keeper


def running_job_threads() -> int:
    """Job threads not yet stopped, their owners alive or not (shutdown checks, tests)."""
    return 0 if _keeper is None else _keeper.running()


class BackgroundJob(QObject):
    """GUI-thread controller of one run at a time of a plain function on a QThread."""

    started = Signal()
    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    finished = Signal()  # after any of succeeded / failed / cancelled

    def __init__(self, parent: QObject | None = None, *, name: str = "background job"):
        super().__init__(parent)
        self._name = name
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self._cancellation = Cancellation()

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, fn: Callable, *args) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self._name} is already running")
        self._cancellation = Cancellation()  # one per run: a cancelled run's request ends with it
        thread = QThread()
        thread.setObjectName(self._name)
        worker = _Worker(fn, args, self._cancellation)
        worker.moveToThread(thread)
        # Every connection exists before the thread starts (§7). Bound slots of this
        # GUI-thread object are queued to the GUI thread (§3).
        worker.progress.connect(self._relay_progress)
        worker.done.connect(self._relay_done)
        worker.error.connect(self._relay_error)
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)  # §5
        thread.finished.connect(self._thread_finished)
        thread.started.connect(worker.run)
        _thread_keeper().keep(thread, worker)
        self._thread, self._worker = thread, worker
        self._outcome: tuple[str, object] | None = None
        thread.start()
        self.started.emit()

    def cancel(self) -> None:
        """Ask the function to stop at its next check; `cancelled` follows when it has."""
        self._cancellation.cancel()

    def is_cancel_requested(self) -> bool:
        return self._cancellation.cancelled

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread has stopped (shutdown only)."""
        if self._thread is None:
            return True
        return self._thread.wait(timeout_ms)

    @Slot(object)
    def _relay_progress(self, value: object) -> None:
        self.progress.emit(value)

    @Slot(object)
    def _relay_done(self, result: object) -> None:
        self._outcome = ("done", result)

    @Slot(object)
    def _relay_error(self, exc: object) -> None:
        self._outcome = ("error", exc)

    @Slot()
    def _thread_finished(self) -> None:
        thread, self._thread = self._thread, None
        self._worker = None
        if thread is not None:
            thread.wait()  # finished fires before the thread has fully stopped (§8)
        kind, value = self._outcome or ("error", RuntimeError(f"{self._name} ended without a result"))
        if kind == "done":
            self.succeeded.emit(value)
        elif isinstance(value, CancelledError):
            self.cancelled.emit()
        else:
            if not _is_user_error(value):
                log.error("%s failed", self._name, exc_info=(type(value), value, value.__traceback__))
            self.failed.emit(value)
        self.finished.emit()


def _is_user_error(exc: object) -> bool:
    from cognitivetwin_core.errors import CognitiveTwinError

    return isinstance(exc, CognitiveTwinError) and not isinstance(exc, CancelledError)
