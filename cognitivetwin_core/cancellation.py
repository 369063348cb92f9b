"""One way to ask long work to stop: a `Cancellation`, set from any thread, checked by the
work between its steps (threads cannot be interrupted; a child process relays its parent's
request into one).

    cancellation = Cancellation()
    threading.Thread(target=train, kwargs={"cancellation": cancellation}).start()
    cancellation.cancel()               # from any thread; the work stops at its next check

The work calls `cancellation.cancelled` (or `raise_if_cancelled(message)`) between steps,
or `wait(seconds)` where it would sleep. The app's background jobs hand their functions one
(`fn(progress, cancellation, *args)`, app/qt/background_job.py): there is no other stop check.
"""

from __future__ import annotations

import threading

from cognitivetwin_core.errors import CancelledError


class Cancellation:
    """A stop request shared between the one who asks and the work that checks."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float | None = None) -> bool:
        """Sleep up to `seconds`, waking at once when cancelled; whether it was."""
        return self._event.wait(seconds)

    def raise_if_cancelled(self, message: str) -> None:
        if self.cancelled:
            raise CancelledError(message)
