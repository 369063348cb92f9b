"""One way to ask long work to stop: a `Cancellation`, set from any thread, checked by the
work between its steps (threads cannot be interrupted; a child process relays its parent's
request into one).

    cancellation = Cancellation()
    threading.Thread(target=train, kwargs={"cancellation": cancellation}).start()
    cancellation.cancel()               # from any thread; the work stops at its next check

The work calls `cancellation.cancelled` (or `raise_if_cancelled(message)`) between steps,
or `wait(seconds)` where it would sleep. A caller that already has its own stop check (the
app's background jobs hand their functions a `cancelled()` callable) wraps it:
`Cancellation(also_when=cancelled)` is cancelled when either says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cognitivetwin_core.errors import CancelledError

_POLL_S = 0.1


class Cancellation:
    """A stop request shared between the one who asks and the work that checks."""

    def __init__(self, also_when: Callable[[], bool] | None = None) -> None:
        self._event = threading.Event()
        self._also_when = also_when

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        if not self._event.is_set() and self._also_when is not None and self._also_when():
            self._event.set()
        return self._event.is_set()

    def wait(self, seconds: float | None = None) -> bool:
        """Sleep up to `seconds`, waking at once when cancelled; whether it was."""
        if self._also_when is None:
            return self._event.wait(seconds)
        # The outside check cannot wake the event: look at it every tenth of a second.
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.cancelled:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._event.wait(_POLL_S if left is None else min(_POLL_S, left))
        return True

    def raise_if_cancelled(self, message: str) -> None:
        if self.cancelled:
            raise CancelledError(message)
