"""Annotating a big import on several processes while the importing thread parses and writes.

Annotation (words, trajectory, pattern labels) is pure Python and most of an import's CPU
time, and it is a pure function of each conversation, so batches of conversations are sent
to worker processes and their rows come back in submission order: the stored values are
exactly those of annotating in the importing thread.

Workers are forked, only on Linux: forking needs no re-import of the program, so it works
inside a PyInstaller bundle (no `freeze_support` entry point involved) and from the app's
worker thread (the children only run `annotation_rows` on the data they are sent). Where
fork is not available (Windows, macOS), with fewer than two CPUs, for small imports, or
with COGNITIVETWIN_IMPORT_WORKERS=0, annotation stays in the importing thread.

Workers never outlive the import: they ignore Ctrl-C (the terminal sends it to the whole
process group; the importing process decides), die with their parent (Linux
PR_SET_PDEATHSIG, plus a parent check for a parent gone before that was set), and an
import that ends by an exception (Ctrl-C, a cancel, an error) stops them at once instead
of waiting for their batches. See docs/import-workers.md.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator

from cognitivetwin_core.child_processes import die_with_parent
from cognitivetwin_core.conversation import Conversation

WORKERS_ENV = "COGNITIVETWIN_IMPORT_WORKERS"
# Below this many messages an import is annotated in its own thread: starting workers
# costs more than it saves, and small imports (the app's demo, tests) stay single-process.
POOL_AFTER_MESSAGES = 10_000
_MAX_WORKERS = 8

Annotate = Callable[[list[Conversation]], list]

_STOP_WAIT_S = 5.0


def _worker_init(parent_pid: int) -> None:
    """Runs first in each forked worker."""
    # The fork copied the parent's Python handlers (a CLI's Ctrl-C handler, the app's):
    # a worker leaves Ctrl-C to its parent and ends quietly when told to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Forked by the importing thread, which outlives its workers: the kernel's signal is safe.
    die_with_parent(parent_pid, watchdog=False)


def worker_count() -> int:
    """How many worker processes a big import uses (0: annotate in the importing thread)."""
    configured = os.environ.get(WORKERS_ENV, "").strip()
    if configured:
        try:
            return max(0, int(configured))
        except ValueError:
            return 0
    if not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # The importing process parses and writes meanwhile; with two CPUs two workers still
    # help, as the three processes share them.
    return min(cpus, _MAX_WORKERS) if cpus >= 2 else 0


class AnnotationPipeline:
    """Batches in, (key, annotations) out in the same order; `annotate(batch)` runs in the
    calling thread until the import is big enough, then on worker processes, one batch in
    flight per worker (memory stays a few batches)."""

    def __init__(self, annotate: Annotate, *, workers: int | None = None, pool_after_messages: int | None = None):
        self._annotate = annotate
        self._workers = worker_count() if workers is None else workers
        self._pool_after = POOL_AFTER_MESSAGES if pool_after_messages is None else pool_after_messages
        self._messages = 0
        self._pool: _Workers | None = None
        self._next_worker = 0
        # (key, batch, the worker annotating it, or its rows when annotated here)
        self._pending: deque[tuple[object, list[Conversation], _Worker | list]] = deque()
        self.pooled = False  # whether workers were used at some point

    def submit(self, key: object, batch: list[Conversation]) -> Iterator[tuple[object, list]]:
        """Queue a batch (with the caller's `key` for it); yields the batches that are done."""
        self._messages += sum(len(conversation.messages) for conversation in batch)
        pool = self._start_pool_if_worth_it()
        if pool is not None:
            # Results come back in submission order, so the next worker in turn is the one
            # holding the oldest batch once every worker has one: finish that batch first.
            while self._pool is not None and len(self._pending) >= len(self._pool.workers):
                yield self._finish(*self._pending.popleft())
        result: _Worker | list | None = None
        if self._pool is not None:
            worker = self._pool.workers[self._next_worker % len(self._pool.workers)]
            self._next_worker += 1
            if worker.send(batch):
                result = worker
            else:
                self._stop_pool()
        if result is None:
            result = self._annotate(batch)
        self._pending.append((key, batch, result))
        while self._pending and _done(self._pending[0][2]):
            yield self._finish(*self._pending.popleft())

    def drain(self) -> Iterator[tuple[object, list]]:
        """The remaining batches, in order."""
        while self._pending:
            yield self._finish(*self._pending.popleft())

    def close(self, *, abort: bool = False) -> None:
        """Stop the workers: at once (`abort`: the results are unwanted) or after telling them to end."""
        self._pending.clear()
        self._stop_pool(abort=abort)

    def __enter__(self) -> AnnotationPipeline:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.close(abort=exc_type is not None)

    def _start_pool_if_worth_it(self) -> _Workers | None:
        if self._pool is None and self._workers > 0 and self._messages >= self._pool_after:
            try:
                self._pool = _Workers(self._workers, self._annotate)
                self.pooled = True
            except (OSError, ValueError):
                self._workers = 0
        return self._pool

    def _stop_pool(self, *, abort: bool = False) -> None:
        pool, self._pool = self._pool, None
        self._workers = 0
        if pool is not None:
            pool.stop(abort=abort)

    def _finish(self, key: object, batch: list[Conversation], result: _Worker | list) -> tuple[object, list]:
        if isinstance(result, _Worker):
            rows = result.receive()
            if rows is not None:
                return key, rows
            # A worker died (killed, out of memory) or its annotation failed: this batch is
            # annotated here (raising that failure here, where the import can report it),
            # and so is the rest of the import.
            self._stop_pool()
            return key, self._annotate(batch)
        return key, result


def _done(result: _Worker | list) -> bool:
    return not isinstance(result, _Worker) or result.ready()


class _Worker:
    """One forked worker and the parent's end of its pipe; at most one batch in flight, so
    neither side ever waits to send while the other waits to send too."""

    def __init__(self, context, annotate: Annotate):
        self.connection, child_end = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child_end, annotate, os.getpid()), daemon=True, name="annotation-worker"
        )
        self.process.start()
        child_end.close()

    def send(self, batch: list[Conversation]) -> bool:
        try:
            self.connection.send(batch)
            return True
        except OSError:  # the worker is gone
            return False

    def ready(self) -> bool:
        try:
            return self.connection.poll()
        except OSError:
            return True

    def receive(self) -> list | None:
        """The batch's rows; None when the worker died or its annotation failed."""
        try:
            ok, rows = self.connection.recv()
        except (OSError, EOFError):
            return None
        return rows if ok else None


class _Workers:
    def __init__(self, count: int, annotate: Annotate):
        context = multiprocessing.get_context("fork")
        self.workers: list[_Worker] = []
        # A Ctrl-C landing between a fork and the child's `_worker_init` would run the
        # parent's handler in the child: held back here, and in the child until it ignores it.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for _ in range(count):
                self.workers.append(_Worker(context, annotate))
        except BaseException:
            self.stop(abort=True)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def stop(self, *, abort: bool) -> None:
        # No threads and no shared queues: a worker killed mid-message leaves nothing that
        # any thread of this process could wait on forever (as the executor's queues did).
        for worker in self.workers:
            if abort:
                worker.process.kill()
            else:
                try:
                    worker.connection.send(None)
                except OSError:
                    pass
            worker.connection.close()
        for worker in self.workers:
            worker.process.join(_STOP_WAIT_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(_STOP_WAIT_S)


def _serve(connection, annotate: Annotate, parent_pid: int) -> None:
    """A worker's loop: a batch in, (ok, rows) out, until the parent sends None or goes."""
    _worker_init(parent_pid)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    while True:
        try:
            batch = connection.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        try:
            result = (True, annotate(batch))
        except Exception:  # noqa: BLE001 - the parent annotates the batch again and reports it
            result = (False, None)
        try:
            connection.send(result)
        except OSError:
            return
