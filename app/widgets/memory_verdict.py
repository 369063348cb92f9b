"""The memory verdict shown before Start: will this base fit on this device?

`check(fn, *args)` runs a core verdict function (`local_memory_verdict` for Phase 1,
`encode_memory_verdict` for Phase 2) and shows its one sentence: green when it fits, red
with the advice when it does not. A request made while one runs replaces the pending one.

The function imports torch to see the GPU, and an import holds the interpreter for long
stretches: run on a thread of the window's process, it stalled the window for up to 230 ms
(docs/gui-responsiveness.md). So a BackgroundJob waits while the core's helper child
(`child_processes.call_in_child`) runs it; the window's process never imports torch for it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal

from app.qt.background_job import BackgroundJob
from app.widgets.message_label import MessageLabel


def _verdict(_progress, _cancellation, fn: Callable, args: tuple, kwargs: dict, in_child: bool):
    if in_child:
        from cognitivetwin_core.child_processes import call_in_child

        return call_in_child(fn, *args, **kwargs)
    return fn(*args, **kwargs)


class MemoryVerdictLabel(MessageLabel):
    checked = Signal(object)  # the MemoryVerdict, or None when it could not be made

    def __init__(self, parent=None):
        super().__init__(parent)
        self.verdict = None
        self.in_child = True  # False: in this process (a test that patches the core's memory readings)
        self._pending: tuple | None = None
        self._job = BackgroundJob(self, name="memory check")
        self._job.succeeded.connect(self._show)
        self._job.failed.connect(self._failed)
        self._job.finished.connect(self._next)

    @property
    def fits(self) -> bool | None:
        return None if self.verdict is None else bool(self.verdict.ok)

    def is_checking(self) -> bool:
        return self._job.is_running() or self._pending is not None

    def clear_message(self) -> None:
        self.verdict = None  # no base to judge: no verdict either
        super().clear_message()

    def check(self, fn: Callable, *args, **kwargs) -> None:
        self._pending = (fn, args, kwargs)
        if not self._job.is_running():
            self._next()

    def _next(self) -> None:
        if self._pending is None:
            return
        fn, args, kwargs = self._pending
        self._pending = None
        self.verdict = None  # the last verdict was for another base or device: not this one
        self.show_info("Checking the memory this base needs…")
        self._job.start(_verdict, fn, args, kwargs, self.in_child)

    def _show(self, verdict) -> None:
        if self._pending is not None:
            return  # a newer request follows
        self.verdict = verdict
        (self.show_ok if verdict.ok else self.show_error)(verdict.text)
        self.checked.emit(verdict)

    def _failed(self, exc) -> None:
        if self._pending is not None:
            return
        self.verdict = None
        from cognitivetwin_core.errors import CognitiveTwinError

        text = str(exc) if isinstance(exc, CognitiveTwinError) else f"The memory check failed ({type(exc).__name__})."
        self.show_error(text)
        self.checked.emit(None)

    def shutdown(self) -> None:
        self._pending = None
        self._job.wait()
