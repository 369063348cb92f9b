"""The built-in model's one-time preparation, done when the app first starts idle.

The built-in base ships as a GGUF file that is converted once into a model folder in the
user cache (`cognitivetwin_core/models/embedded.py`, about two minutes on a laptop). Done
on the first Dry run, it made the button look hung; so the app starts it a moment after the
window shows, and says so: "Preparing the built-in model, once: about 2 minutes".

The conversion runs in the core's helper child (`child_processes.call_in_child`), so the
window's process never imports torch for it; a daemon thread waits for the child (a plain
thread: the app may quit meanwhile, and the child dies with it). The conversion reports no
steps, so the progress shown is the time spent against the time it usually takes, said as
"about".

    preparation = builtin_model_preparation()       # one per app
    preparation.changed.connect(...)                 # state, and progress while preparing
    preparation.start()                              # no-op once ready or running
    await preparation.wait()                         # True when the folder is there
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)

EXPECTED_S = 120.0  # the conversion on a 2-core laptop (measured: 1.5 to 2.5 minutes)
PREPARING_TEXT = "Preparing the built-in model, once: about 2 minutes"

UNKNOWN, CHECKING, PREPARING, READY, FAILED = "unknown", "checking", "preparing", "ready", "failed"


def _is_converted() -> bool:
    from cognitivetwin_core.models.embedded import EmbeddedModelMissingError, is_converted

    try:
        return is_converted()
    except EmbeddedModelMissingError:
        return True  # nothing to prepare: the base's own check says what is missing, where it is used


def _convert_in_child() -> None:
    from cognitivetwin_core.child_processes import call_in_child
    from cognitivetwin_core.models.embedded import ensure_converted

    call_in_child(ensure_converted)


class BuiltinModelPreparation(QObject):
    changed = Signal()
    _finished = Signal(object)  # from the waiting thread: None, or the exception

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        is_ready: Callable[[], bool] = _is_converted,
        prepare: Callable[[], None] = _convert_in_child,
    ):
        super().__init__(parent)
        self._is_ready = is_ready
        self._prepare = prepare
        self.state = UNKNOWN
        self.error = ""
        self._started_at = 0.0
        self._waiters: list[asyncio.Future] = []
        self._tick = QTimer(self)  # the bar moves once a second while preparing
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self.changed.emit)
        self._finished.connect(self._on_finished)

    # --- what the screens show ----------------------------------------------------------------

    @property
    def preparing(self) -> bool:
        return self.state in (CHECKING, PREPARING)

    def elapsed(self) -> float:
        return time.monotonic() - self._started_at if self.state == PREPARING else 0.0

    def percent(self) -> int:
        """Time spent against the usual time, held below 100 until it is really done."""
        if self.state == READY:
            return 100
        return min(95, int(100 * self.elapsed() / EXPECTED_S))

    def text(self) -> str:
        if self.state == PREPARING:
            from cognitivetwin_core.durations import format_duration

            return f"{PREPARING_TEXT} ({format_duration(self.elapsed())} so far)…"
        if self.state == FAILED:
            return f"The built-in model could not be prepared: {self.error}"
        return ""

    # --- running --------------------------------------------------------------------------------

    def start(self) -> None:
        if self.state in (CHECKING, PREPARING, READY):
            return
        self.state = CHECKING
        threading.Thread(target=self._run, name="built-in model preparation", daemon=True).start()

    def _run(self) -> None:
        try:
            if not self._is_ready():
                self._finished.emit("preparing")
                self._prepare()
        except BaseException as exc:  # noqa: BLE001 - reported in the window, in words
            self._finished.emit(exc)
        else:
            self._finished.emit(None)

    def _on_finished(self, outcome: object) -> None:
        if outcome == "preparing":
            self.state = PREPARING
            self._started_at = time.monotonic()
            self._tick.start()
            log.info("preparing the built-in model (its one-time conversion)")
        else:
            self._tick.stop()
            self.state = READY if outcome is None else FAILED
            self.error = "" if outcome is None else str(outcome)
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(outcome is None)
            self._waiters.clear()
        self.changed.emit()

    async def wait(self) -> bool:
        """Start if needed and wait until the model is there (True) or could not be made."""
        self.start()
        if self.state == READY:
            return True
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        return await future


_preparation: BuiltinModelPreparation | None = None


def builtin_model_preparation() -> BuiltinModelPreparation:
    """The app's one preparation (made on first use; it lives as long as the application)."""
    global _preparation
    if _preparation is None:
        from PySide6.QtWidgets import QApplication

        _preparation = BuiltinModelPreparation(QApplication.instance())
    return _preparation
