"""Following a Phase 1 job to its end: one polling loop with back-off, shared by the Together
manager, the local runs and the app (which drives `Backoff` one step at a time from asyncio).

Back-off: poll every `base` seconds while the job moves (status, step or new events), slow
down by `idle_factor` up to `maximum` while nothing changes, and double on each transient
failure, giving up after `max_failures` failures in a row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CancelledError
from cognitivetwin_core.phase1.jobs import JobUpdate

# Kinds of Together service errors worth retrying (see together_errors.TogetherServiceError.kind).
TRANSIENT_KINDS = ("rate_limit", "server", "timeout", "connection")


def is_transient(exc: BaseException) -> bool:
    """Whether a failed poll is worth retrying (rate limit, server error, timeout, connection)."""
    return getattr(exc, "kind", None) in TRANSIENT_KINDS


@dataclass
class Backoff:
    """The delay before the next poll, one step at a time (no sleeping here)."""

    base: float = 5.0
    maximum: float = 60.0
    idle_factor: float = 1.5
    failure_factor: float = 2.0
    max_failures: int = 8
    interval: float = field(init=False)
    failures: int = field(default=0, init=False)
    _last: tuple | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.interval = self.base

    def after_update(self, update: JobUpdate) -> float:
        """The delay after a successful poll: `base` if the job moved, longer if it did not."""
        self.failures = 0
        moved = self._last is None or (update.status, update.step) != self._last or bool(update.new_events)
        self._last = (update.status, update.step)
        self.interval = self.base if moved else min(self.maximum, self.interval * self.idle_factor)
        return self.interval

    def after_failure(self, transient: bool = True) -> float | None:
        """The delay after a failed poll, or None when it is time to give up."""
        if not transient or self.failures >= self.max_failures:
            return None
        self.failures += 1
        self.interval = min(self.maximum, max(self.interval, 0.5) * self.failure_factor)
        return self.interval


def follow(
    poll: Callable[[], JobUpdate],
    *,
    backoff: Backoff,
    on_update: Callable[[JobUpdate], None] | None = None,
    cancellation: Cancellation | None = None,
    on_stop: Callable[[], None] | None = None,
    stop_message: str = "Stopped watching the job.",
    retry_on: tuple[type[BaseException], ...] = (),
    on_retry: Callable[[BaseException, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> JobUpdate:
    """Poll until the job ends and return its terminal update.

    `cancellation` is checked before each poll: with `on_stop` it is called once and the
    loop goes on to the job's end (a local run that stops at its next step); without it the
    loop raises CancelledError(`stop_message`). A poll raising one of `retry_on` that
    `is_transient` is retried after the back-off's delay; anything else propagates.
    """
    stopped = False
    while True:
        if cancellation is not None and not stopped and cancellation.cancelled:
            if on_stop is None:
                raise CancelledError(stop_message)
            stopped = True
            on_stop()
        try:
            update = poll()
        except retry_on as exc:
            delay = backoff.after_failure(is_transient(exc))
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            sleep(delay)
            continue
        if on_update is not None:
            on_update(update)
        if update.terminal:
            return update
        sleep(backoff.after_update(update))
