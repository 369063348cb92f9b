"""Child processes that never outlive their parent, and short calls run in one.

`die_with_parent(parent_pid)` is the first thing a child runs: on Linux the kernel sends it
SIGKILL when its parent goes (PR_SET_PDEATHSIG), and a watchdog thread checks the parent's
pid everywhere. PR_SET_PDEATHSIG fires when the *thread* that started the child ends, not
the process, so a child started from a short-lived thread must use the watchdog alone.

`call_in_child(fn, *args, **kwargs)` runs a picklable function in a spawned child and
returns its result (or raises its exception, errors for the user included). For short calls
that import torch from a window: an import holds the interpreter (the GIL) for long
stretches, and a window drawn by the same interpreter stutters meanwhile (see
docs/gui-responsiveness.md). The child is kept for the next call (the second call pays no
import) and ends after `IDLE_S` without calls, or with its parent.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from cognitivetwin_core.errors import CognitiveTwinError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_WATCHDOG_S = 1.0
IDLE_S = 300.0  # a helper child unused this long ends; the next call starts another
# A helper yields the CPU to its parent (a window) when both want it.
CHILD_NICENESS = 5


def die_with_parent(parent_pid: int, *, kernel_signal: bool = True, watchdog: bool = True) -> None:
    """Make the calling child process end when `parent_pid` does (see the module's note)."""
    if kernel_signal and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            log.debug("PR_SET_PDEATHSIG unavailable; the parent check alone ends the child", exc_info=True)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if watchdog:

        def watch() -> None:
            while True:
                time.sleep(_WATCHDOG_S)
                if os.getppid() != parent_pid:
                    os._exit(1)

        threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def yield_to_parent(niceness: int = CHILD_NICENESS) -> None:
    """Lower the calling child's CPU priority: its parent (a window) comes first when both want the CPU."""
    try:
        os.nice(niceness)
    except (AttributeError, OSError):  # no os.nice on Windows
        pass


def _helper_init(parent_pid: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the parent decides, not the helper.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield_to_parent()
    # Started from whichever thread called first (often a short-lived one): watchdog only.
    die_with_parent(parent_pid, kernel_signal=False)


class _Helper:
    """One spawned child for short calls, started on demand and ended when idle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._calls_running = 0
        self._idle_timer: threading.Timer | None = None

    def call(self, fn: Callable, *args, **kwargs):
        try:
            return self._call_once(fn, args, kwargs)
        except BrokenProcessPool:
            pass  # the child died (killed, out of memory): once more, in a fresh one
        try:
            return self._call_once(fn, args, kwargs)
        except BrokenProcessPool:
            raise CognitiveTwinError(
                "A helper process ended unexpectedly (out of memory, or killed); try again."
            ) from None

    def _call_once(self, fn: Callable, args: tuple, kwargs: dict):
        executor = self._acquire()
        try:
            return executor.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool:
            self._discard(executor)
            raise
        finally:
            self._release()

    def _acquire(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),  # never fork a process with threads
                    initializer=_helper_init,
                    initargs=(os.getpid(),),
                )
            self._calls_running += 1
            return self._executor

    def _release(self) -> None:
        with self._lock:
            self._calls_running -= 1
            if self._calls_running == 0 and self._executor is not None:
                self._idle_timer = threading.Timer(IDLE_S, self.shutdown)
                self._idle_timer.daemon = True
                self._idle_timer.start()

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """End the child now (no call may be running; a later call starts another)."""
        with self._lock:
            if self._calls_running:
                return
            executor, self._executor = self._executor, None
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def pid(self) -> int | None:
        """The child's process id while it runs (for tests and diagnostics)."""
        with self._lock:
            processes = getattr(self._executor, "_processes", None) or {}
            return next(iter(processes), None)


_helper = _Helper()


def _as_called_from(environment: dict, cwd: str, fn: Callable, args: tuple, kwargs: dict):
    # The helper lives across calls: it takes the caller's current environment and folder
    # each time (a model cache or settings folder named by a variable, a relative path).
    if os.environ != environment:
        os.environ.clear()
        os.environ.update(environment)
    if os.getcwd() != cwd:
        os.chdir(cwd)
    return fn(*args, **kwargs)


def call_in_child(fn: Callable, *args, **kwargs):
    """`fn(*args, **kwargs)` in the helper child, seeing this process's environment variables
    and working folder; its result, or its exception raised here."""
    return _helper.call(_as_called_from, dict(os.environ), os.getcwd(), fn, args, kwargs)


def helper_pid() -> int | None:
    return _helper.pid()


def end_helper() -> None:
    """End the helper child now (the app calls this as it closes)."""
    _helper.shutdown()
