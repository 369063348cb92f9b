"""Long work in a supervised child process: the one protocol Phase 1's local LoRA, Phase 2's
training and the evaluation share, so that the window's process never runs a model.

Why a process and not a thread: a thread that trains or generates holds the interpreter (the
GIL) for long stretches (imports, model load, every step) and a window drawn by the same
interpreter stutters (docs/gui-responsiveness.md); and a crashed or killed model run must not
take the window with it.

The parent:

    child = SupervisedChild(work, (arguments...), name="local-lora")
    for event in child.events():          # from one thread: the child's events, in order
        ...
    child.request_stop(save=True)         # from any thread (before start too: delivered then)
    child.request_cancel()

`events()` raises the exception the work raised in the child (errors for the user included,
`CancelledError` too), and `ChildCrashedError` with one sentence when the child ended without
finishing (killed, out of memory, a crash in native code). A caller that needs more control
(Phase 2 also supervises its encoding ranks) uses `start()`, `receive(timeout)` and `close()`.

The child: `work(channel, *arguments)` runs there, a module-level function (spawned children
import it by name). `channel.send(event)` sends any picklable object to the parent;
`channel.cancellation` (cognitivetwin_core/cancellation.py) is cancelled on a stop or cancel
request, or the work takes the requests itself with `channel.on_request(handler)`. The child
is started with multiprocessing's "spawn" context (a fresh interpreter: a process with live
threads, such as a Qt app, must never be forked), dies with its parent (child_processes.py),
and when the parent closes its end without asking, the work is asked to stop without saving
and the child ends within `STOP_GRACE_S`.

A serving child stays alive across requests (the chat keeps its model loaded between
replies): its work is `serve(channel, handle)`, and the parent asks it one request at a time,

    child = SupervisedChild(work, name="chat", long_lived=True)
    for message in child.ask(request):    # the handling's events, then RequestDone(result)
        ...
    child.request_stop()                  # ends the request being handled, not the child
    child.close()                         # ends the child

`ask` starts the child the first time, raises what `handle(request, cancellation)` raised
(the child lives on) or `ChildCrashedError` (the child is gone: the caller starts another).
A long-lived child is used from several threads, so it is started without the kernel's
parent-death signal (tied to the starting thread, child_processes.py): the watchdog alone
ends it within a second of its parent.

Messages, typed (never tuples told apart by their first item): parent -> child `StopRequest`,
`CancelRequest`, `WorkRequest`; child -> parent the work's own events, `RequestDone` or
`RequestFailed` for each request, then `ChildFinished` or `ChildFailed`.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.child_processes import die_with_parent, yield_to_parent
from cognitivetwin_core.errors import CognitiveTwinError

log = logging.getLogger(__name__)

# Imported now, not when the first child starts: imports hold the interpreter (a window waits).
importlib.import_module("multiprocessing.popen_spawn_win32" if os.name == "nt" else "multiprocessing.popen_spawn_posix")

STOP_GRACE_S = 60.0  # a parent that gives up: the child's time to stop before it is killed
POLL_S = 0.5


@dataclass(frozen=True)
class StopRequest:
    """End the work at its next step, keeping what it made (`save`: write a last checkpoint)."""

    save: bool = True


@dataclass(frozen=True)
class CancelRequest:
    """End the work at its next step and discard it."""


@dataclass(frozen=True)
class ChildFinished:
    """The work returned: nothing more comes."""


@dataclass(frozen=True)
class ChildFailed:
    """The work raised: the exception (None when it cannot cross to the parent), its repr, its traceback."""

    exception: BaseException | None
    text: str
    trace: str


@dataclass(frozen=True)
class WorkRequest:
    """For a serving child: handle `body` (its events, then `RequestDone` or `RequestFailed`)."""

    request_id: int
    body: object


@dataclass(frozen=True)
class RequestDone:
    """A serving child handled a request: what its handler returned."""

    request_id: int
    result: object


@dataclass(frozen=True)
class RequestFailed:
    """A serving child's handler raised (the child lives on): as `ChildFailed`."""

    request_id: int
    exception: BaseException | None
    text: str
    trace: str


class ChildCrashedError(CognitiveTwinError):
    """The child ended without finishing (killed, out of memory, a crash in native code)."""

    def __init__(self, message: str, exitcode: int | None):
        super().__init__(message)
        self.exitcode = exitcode


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, in words: "was ended by signal SIGKILL", "ended with exit code 1"."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"was ended by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was ended by signal {-exitcode}"
    return f"ended with exit code {exitcode}"


def crash_sentence(what: str, exitcode: int | None, then: str = "") -> str:
    """The sentence a crashed child's job ends with: `what` (e.g. "The training process")."""
    return f"{what} {describe_exit(exitcode)} before it finished (out of memory, or killed){then}. " + (
        "The log file has the details."
    )


class SupervisedChild:
    """One run of `work(channel, *arguments)` in a spawned child, supervised from here."""

    def __init__(
        self,
        work: Callable,
        arguments: tuple = (),
        *,
        name: str,
        what: str = "The background process",
        long_lived: bool = False,
    ):
        self.work = work
        self.arguments = arguments
        self.name = name
        self.what = what  # how a crash sentence names the child
        self.long_lived = long_lived  # outlives the thread that starts it (see the module's note)
        self._request_ids = 0
        self._lock = threading.Lock()
        self._pending: list[object] = []  # requests made before the child started
        self._control = None
        self._events = None
        self._process = None
        self._pid: int | None = None
        self.requested: StopRequest | CancelRequest | None = None  # the last request made
        self.finished = False  # ChildFinished or ChildFailed arrived

    # ----- control (any thread) ------------------------------------------------------------------

    def request_stop(self, save: bool = True) -> None:
        self._send(StopRequest(bool(save)))

    def request_cancel(self) -> None:
        self._send(CancelRequest())

    def _send(self, request: StopRequest | CancelRequest | WorkRequest) -> None:
        with self._lock:
            if not isinstance(request, WorkRequest):
                self.requested = request
            if self._control is None:
                self._pending.append(request)
                return
            try:
                self._control.send(request)
            except (OSError, ValueError):  # the child has ended (or ends now): nothing to tell
                pass

    @property
    def pid(self) -> int | None:
        """The child's pid while it is supervised (not yet reaped: the pid is still its)."""
        # Never Process.is_alive() here: from a second thread it could reap the child under
        # the supervising thread's join, which would then see no exit code.
        with self._lock:
            return self._pid

    def terminate(self) -> None:
        """End the child at once, quietly (SIGTERM: no teardown); for a child with nothing unsaved."""
        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """End the child now (it did not stop when asked); its run then ends as crashed."""
        pid = self.pid
        if pid is not None:
            log.warning("killing the %s process %s", self.name, pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ----- supervision (one thread) -------------------------------------------------------------

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        events, child_events = context.Pipe(duplex=False)
        child_control, control = context.Pipe(duplex=False)
        log_to_file = any(getattr(h, "_cognitivetwin", False) for h in logging.getLogger().handlers)
        process = context.Process(
            target=_child_main,
            args=(
                child_events,
                child_control,
                os.getpid(),
                log_to_file,
                self.work,
                self.arguments,
                not self.long_lived,
            ),
            name=self.name,
            daemon=True,
        )
        process.start()  # not under the lock: a request from the GUI thread must never wait on it
        self._process, self._events = process, events
        with self._lock:
            self._pid = process.pid
            self._control = control
            pending, self._pending = self._pending, []
            for request in pending:
                control.send(request)
        # Only the child holds these ends now: its exit closes the event pipe (EOF here).
        child_events.close()
        child_control.close()

    def receive(self, timeout: float = POLL_S):
        """The child's next message, None when none came within `timeout`; raises EOFError once
        the child has ended and every message was read."""
        try:
            if not self._events.poll(timeout):
                if self._process.is_alive() or self._events.poll():
                    return None
                raise EOFError
            message = self._events.recv()
        except OSError:
            raise EOFError from None
        if isinstance(message, ChildFinished | ChildFailed):
            self.finished = True
        return message

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode if self._process is not None else None

    def join(self, timeout: float | None = None) -> None:
        if self._process is not None:
            self._process.join(timeout)

    def crash_error(self, then: str = "") -> ChildCrashedError:
        self.join(10)
        message = crash_sentence(self.what, self.exitcode, then)
        log.error("%s: %s", self.name, message)
        return ChildCrashedError(message, self.exitcode)

    def close(self, grace_s: float = STOP_GRACE_S) -> None:
        """Reap the child: one still running (the consumer stopped early) is cancelled, given
        `grace_s`, then killed. Closing again does nothing."""
        process = self._process
        if process is None:
            return
        if process.is_alive():
            self.request_cancel()
            process.join(grace_s)
            if process.is_alive():
                process.kill()
        with self._lock:
            control, self._control = self._control, None
            self._pid = None
        process.join()
        if control is not None:  # None: closed before
            control.close()
        self._events.close()

    def events(self) -> Iterator[object]:
        """Start the child and yield the work's events; raises what it raised, or `ChildCrashedError`."""
        self.start()
        try:
            while True:
                try:
                    message = self.receive()
                except EOFError:
                    raise self.crash_error() from None
                if message is None:
                    continue
                if isinstance(message, ChildFinished):
                    return
                if isinstance(message, ChildFailed):
                    raise_failure(message, self.name)
                yield message
        finally:
            self.close()

    def ask(self, body: object, *, crash_then: str = "") -> Iterator[object]:
        """A serving child's answer to `body`: the events of its handling, then its `RequestDone`
        (started here the first time). One request at a time, read to its end. Raises what the
        handler raised, or `ChildCrashedError` (its sentence ends with `crash_then`) when the
        child ended: it is then closed, and asks of this object fail the same way."""
        if self._process is None:
            self.start()
        self._request_ids += 1
        request_id = self._request_ids
        self._send(WorkRequest(request_id, body))
        while True:
            try:
                message = self.receive()
            except EOFError:
                error = self.crash_error(crash_then)
                self.close(grace_s=0)
                raise error from None
            if message is None:
                continue
            if isinstance(message, RequestDone | RequestFailed) and message.request_id != request_id:
                continue  # the end of a request an earlier reader left unread
            if isinstance(message, RequestFailed | ChildFailed):
                raise_failure(message, self.name)
            yield message
            if isinstance(message, RequestDone):
                return


class ServingChild:
    """A serving child that is started at the first request and again after a crash: what
    keeps a model loaded between requests (the chat, the playground's analysis). `ask` yields
    the request's events, then its `RequestDone`; a crash fails that request with one
    sentence (`ChildCrashedError`), and the next request starts a new child."""

    def __init__(self, work: Callable, arguments: tuple = (), *, name: str, what: str, crash_then: str = ""):
        self.work, self.arguments, self.name, self.what = work, arguments, name, what
        self.crash_then = crash_then  # the end of the crash sentence ("; ... starts it again")
        self._lock = threading.Lock()
        self._child: SupervisedChild | None = None

    def ask(self, body: object) -> Iterator[object]:
        with self._lock:
            if self._child is None:
                self._child = SupervisedChild(
                    self.work, self.arguments, name=self.name, what=self.what, long_lived=True
                )
            child = self._child
        try:
            yield from child.ask(body, crash_then=self.crash_then)
        except ChildCrashedError:
            with self._lock:
                if self._child is child:
                    self._child = None
            raise

    def request_stop(self) -> None:
        """End the request being handled (it returns what it has); the child stays."""
        with self._lock:
            child = self._child
        if child is not None:
            child.request_stop(save=False)

    @property
    def pid(self) -> int | None:
        with self._lock:
            child = self._child
        return child.pid if child is not None else None

    def kill(self) -> None:
        """End the child now (a model load does not stop between steps): its request fails as crashed."""
        with self._lock:
            child = self._child
        if child is not None:
            child.kill()

    def close(self, grace_s: float = 10.0) -> None:
        """End the child (a later request starts another). Between requests a serving child
        holds nothing unsaved, so it is ended at once rather than asked: the teardown of an
        interpreter with torch loaded took seconds, and a closing window waited for it."""
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.terminate()
            child.close(grace_s)


def raise_failure(failure: ChildFailed | RequestFailed, name: str):
    """Raise, in the parent, what the work raised in the child."""
    if not isinstance(failure.exception, CognitiveTwinError):
        log.error("the %s process raised %s\n%s", name, failure.text, failure.trace)
    if isinstance(failure.exception, BaseException):
        raise failure.exception
    raise RuntimeError(failure.text)


# ----- the child ---------------------------------------------------------------------------------


class ChildChannel:
    """The work's side of the protocol: `send(event)`, and the parent's requests."""

    def __init__(self, events):
        self._events = events
        self._lock = threading.Lock()
        self.cancellation = Cancellation()
        self.requests: list[StopRequest | CancelRequest | WorkRequest] = []  # before a handler
        self._handler: Callable | None = None

    def send(self, event: object) -> None:
        self._events.send(event)

    def on_request(self, handler: Callable[[StopRequest | CancelRequest], None]) -> None:
        """Hand the requests to `handler` (those that came already too) instead of cancelling."""
        with self._lock:
            self._handler = handler
            earlier = list(self.requests)
        for request in earlier:
            handler(request)

    def deliver(self, request: StopRequest | CancelRequest) -> None:
        with self._lock:
            handler = self._handler
            if handler is None:  # kept for the handler set later (a serving child's are many)
                self.requests.append(request)
        if handler is not None:
            handler(request)
        else:
            self.cancellation.cancel()


def start_child(parent_pid: int, log_to_file: bool, kernel_signal: bool = True) -> None:
    """What every supervised child does first: die with its parent, yield it the CPU, log to its file."""
    # The kernel's signal: only when the supervising thread that started it outlives the child.
    die_with_parent(parent_pid, kernel_signal=kernel_signal)
    yield_to_parent()  # a small niceness costs the work little on an otherwise idle machine
    if log_to_file:
        from cognitivetwin_core.logging_setup import configure_logging

        configure_logging()


def _child_main(
    events, control, parent_pid: int, log_to_file: bool, work: Callable, arguments: tuple, kernel_signal: bool = True
) -> None:
    start_child(parent_pid, log_to_file, kernel_signal)
    channel = ChildChannel(events)
    threading.Thread(target=_follow_control, args=(control, channel), name="control", daemon=True).start()
    try:
        work(channel, *arguments)
        events.send(ChildFinished())
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        try:
            events.send(ChildFailed(*_failure(exc)))
        except OSError:
            pass
    finally:
        events.close()


def _failure(exc: BaseException) -> tuple[BaseException | None, str, str]:
    """What crosses to the parent about `exc` (logged here unless it is an error for the user)."""
    if not isinstance(exc, CognitiveTwinError):
        log.exception("the %s process failed", multiprocessing.current_process().name)
    try:
        pickle.loads(pickle.dumps(exc))  # it must also unpickle in the parent
        payload = exc
    except Exception:
        payload = None
    return payload, repr(exc), traceback.format_exc()


def serve(channel: ChildChannel, handle: Callable[[object, Cancellation], object]) -> None:
    """The work of a serving child: `handle(body, cancellation)` for each `WorkRequest`, in order,
    until the parent cancels. A stop request cancels the request being handled (none: nothing);
    the handler sends its events with `channel.send` and returns the request's result."""
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    lock = threading.Lock()
    current: list[Cancellation] = []

    def on_request(request) -> None:
        if isinstance(request, WorkRequest):
            inbox.put(request)
            return
        with lock:
            for cancellation in current:
                cancellation.cancel()
        if isinstance(request, CancelRequest):
            inbox.put(None)

    channel.on_request(on_request)
    while (request := inbox.get()) is not None:
        cancellation = Cancellation()
        with lock:
            current[:] = [cancellation]
        try:
            result = handle(request.body, cancellation)
        except Exception as exc:  # the request failed; the child serves on
            channel.send(RequestFailed(request.request_id, *_failure(exc)))
        else:
            channel.send(RequestDone(request.request_id, result))
        finally:
            with lock:
                current.clear()


def _follow_control(control, channel: ChildChannel) -> None:
    """The child's control thread: requests from the parent; its pipe closing means the parent is gone."""
    while True:
        try:
            request = control.recv()
        except (EOFError, OSError):
            # The parent closed its end without asking (it died, or gave up): stop, keeping
            # what was saved, and do not outlive it for long.
            channel.deliver(StopRequest(save=False))
            time.sleep(STOP_GRACE_S)
            os._exit(1)
        channel.deliver(request)
