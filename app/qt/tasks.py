"""The asyncio tasks the studio runs on its qasync loop, tracked so quitting cancels them.

qasync's `asyncSlot` keeps no reference to the task it creates (docs/qt.md §12), so every
coroutine the app starts goes through `start_task`, which keeps it until it ends, sends
unexpected exceptions to the error dialog, and lets `cancel_all` stop everything on
`aboutToQuit`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

_running: set[asyncio.Task] = set()


def start_task(coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task:
    """Schedule `coro` on the running loop and keep it until it finishes."""
    task = asyncio.get_event_loop().create_task(coro, name=name)
    _running.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        from app.dialogs.errors import report_unexpected

        report_unexpected(exc, context=f"background task {task.get_name()}")


def running_tasks() -> set[asyncio.Task]:
    return set(_running)


def cancel_all() -> int:
    """Cancel every tracked task; returns how many were still running."""
    pending = [task for task in _running if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        log.info("cancelled %d running task(s) on quit", len(pending))
    return len(pending)
