"""A Phase 2 training run in a child process, so the caller's interpreter stays free.

`Phase2TrainerProcess` has the trainer's face (`run()`, `request_stop`, `request_cancel`,
`run_id`, `output_dir`, `run_record`, `config`), but `run()` runs `Phase2Trainer.run()` in
a child started with multiprocessing's "spawn" context (a fresh interpreter: a process with
live threads, such as a Qt app, must never be forked) and yields the child's events, the
same picklable dataclasses. Why: in one process the training thread holds the interpreter
(the GIL) for long stretches (model load, encoding, every step) and a window drawn by the
same interpreter stutters (docs/gui-responsiveness.md).

    runner = Phase2TrainerProcess(config, workspace=path)   # or conversations=[...], data_file=path
    for event in runner.run():     # from any one thread; request_stop/cancel from any other
        ...

Messages, each a tuple over its own one-way pipe:
    child -> parent: ("info", run_id, output_dir, run_record)  before the first event and
                     with every event other than a step or encoding progress;
                     ("shared-done",)  past one GPU: the shared encoding pass is over;
                     ("event", event);  ("error", exception or None, its repr, traceback text)
    parent -> child: ("stop", save) | ("cancel",)

Past one GPU (`processes=N`): the parent starts ranks 1..N-1 as well, each encoding a
share of the conversations under torch.distributed (phase2/distributed.py, as under
torchrun; they meet on a loopback port), and rank 0, the child above, merges the shares
into the feature cache and trains. Rank 0 reports the progress of its share (about 1/N of
the pass). Stop or Cancel during that shared pass ends every rank at once (nothing is
written before it ends: the run ends "stopped" or "cancelled" with no output); a rank that
dies ends the run as failed, saying which.

Errors the trainer raises (unusable inputs, before anything is written) are raised again
by `run()` in the caller. The child dies with its parent (Linux: PR_SET_PDEATHSIG; and
everywhere a watchdog on the parent's pid and on the control pipe). A child that ends
without its finished event (killed, out of memory, a crash in native code) ends the run as
FinishedEvent(outcome="failed"), also recorded in the run's run.json.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.child_processes import die_with_parent, yield_to_parent
from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.errors import CognitiveTwinError, InputError
from cognitivetwin_core.phase2.config import Phase2Config
from cognitivetwin_core.phase2.events import EncodingEvent, FinishedEvent
from cognitivetwin_core.phase2.trainer import Phase2Trainer

log = logging.getLogger(__name__)

# Imported now, not when the first run starts: imports hold the interpreter (a window waits).
importlib.import_module("multiprocessing.popen_spawn_win32" if os.name == "nt" else "multiprocessing.popen_spawn_posix")

STOP_GRACE_S = 60.0  # a consumer that gives up: the child's time to cancel before it is killed
_POLL_S = 0.5


class Phase2TrainerProcess:
    """A Phase 2 run in a spawned child; the inputs are checked here, before it starts."""

    def __init__(
        self,
        config: Phase2Config,
        *,
        conversations: Sequence[Conversation] | None = None,
        workspace=None,
        data_file: str | Path | None = None,
        processes: int = 1,
    ):
        if processes < 1:
            raise InputError(f"A Phase 2 run needs at least one process, not {processes}.")
        self.processes = processes
        # The trainer checks the settings and the sources (cheap, no torch) and raises what
        # a user can fix now, in the caller, as the in-process trainer would.
        Phase2Trainer(config, conversations=conversations, workspace=workspace, data_file=data_file)
        self.config = config
        self._workspace = workspace if workspace is not None and not isinstance(workspace, str | Path) else None
        if workspace is not None:
            source = {"workspace": str(getattr(workspace, "path", workspace))}
        elif conversations is not None:
            source = {"conversations": list(conversations)}
        else:
            source = {"data_file": str(data_file)}
        self._source = source
        self.run_id: str | None = None
        self.output_dir: Path | None = None
        self.run_record: dict = {}
        self._lock = threading.Lock()
        self._pending: list[tuple] = []  # requests made before the child started
        self._control = None
        self._pid: int | None = None
        self.rank_pids: list[int] = []  # the encoding ranks 1..N-1 while run() supervises them
        self._requested: tuple | None = None  # the last stop or cancel asked for

    # ----- control (any thread) ------------------------------------------------------------------

    def request_stop(self, save: bool = True) -> None:
        self._send(("stop", bool(save)))

    def request_cancel(self) -> None:
        self._send(("cancel",))

    def kill(self) -> None:
        """End the child now (it did not stop when asked); run() then ends as "failed"."""
        pid = self.pid
        if pid is not None:
            log.warning("killing the Phase 2 training process %s", pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @property
    def pid(self) -> int | None:
        """The child's pid while run() supervises it (not yet reaped: the pid is still its)."""
        # Never Process.is_alive() here: from a second thread it could reap the child
        # under run()'s join, which would then see no exit code.
        with self._lock:
            return self._pid

    def _send(self, message: tuple) -> None:
        with self._lock:
            self._requested = message
            if self._control is None:
                self._pending.append(message)
                return
            try:
                self._control.send(message)
            except (OSError, ValueError):  # the child has ended (or ends now): nothing to tell
                pass

    # ----- the run ---------------------------------------------------------------------------------

    def run(self) -> Iterator[object]:
        """Start the child and yield its events; raises what the trainer raised there."""
        context = multiprocessing.get_context("spawn")
        events, child_events = context.Pipe(duplex=False)
        child_control, control = context.Pipe(duplex=False)
        log_to_file = any(getattr(h, "_cognitivetwin", False) for h in logging.getLogger().handlers)
        distributed = None
        ranks: list = []  # the encoding processes of ranks 1..N-1 (docs/gpu.md, "Past one GPU")
        if self.processes > 1:
            distributed = (self.processes, f"tcp://127.0.0.1:{_free_port()}")
            for rank in range(1, self.processes):
                helper = context.Process(
                    target=_rank_main,
                    args=(self.config, self._source, os.getpid(), rank, *distributed, log_to_file),
                    name=f"phase2-encoding-rank-{rank}",
                    daemon=True,
                )
                helper.start()
                ranks.append(helper)
            self.rank_pids = [helper.pid for helper in ranks]
        process = context.Process(
            target=_child_main,
            args=(child_events, child_control, self.config, self._source, os.getpid(), log_to_file, distributed),
            name="phase2-training",
            daemon=True,
        )
        process.start()  # not under the lock: a request from the GUI thread must never wait on it
        with self._lock:
            self._pid = process.pid
            self._control = control
            pending, self._pending = self._pending, []
            for message in pending:
                control.send(message)
        # Only the child holds these ends now: its exit closes the event pipe (EOF here).
        child_events.close()
        child_control.close()
        finished = False
        failed_rank = None
        try:
            shared_done = not ranks
            while True:
                request = None if shared_done else self._requested_now()
                if request is not None:
                    while not shared_done and events.poll(0):  # rank 0 may just have finished
                        shared_done = events.recv()[0] == "shared-done"
                    if not shared_done:
                        # Stop or Cancel during the shared encoding pass, which one rank cannot
                        # leave half-way: end every rank; nothing but shards was written yet.
                        process.kill()
                        for helper in ranks:
                            helper.kill()
                        finished = True
                        yield self._ended_before_training(request)
                        break
                try:
                    if not events.poll(_POLL_S):
                        failed_rank = _failed_rank(ranks)
                        if failed_rank is not None:
                            # Rank 0 would wait for its peer's share (or fail on a closed
                            # socket with a message of the network library's): end it now.
                            process.kill()
                            break
                        if process.is_alive() or events.poll():
                            continue
                        break
                    message = events.recv()
                except (EOFError, OSError):
                    break
                if message[0] == "shared-done":
                    shared_done = True
                elif message[0] == "info":
                    _, self.run_id, output_dir, self.run_record = message
                    self.output_dir = Path(output_dir) if output_dir else None
                elif message[0] == "event":
                    event = message[1]
                    finished = finished or event.kind == "finished"
                    yield event
                elif message[0] == "error":
                    _, exc, text, trace = message
                    log.error("the Phase 2 training process raised %s\n%s", text, trace)
                    failed_rank = _failed_rank(ranks, wait_s=2.0)
                    if failed_rank is not None:  # the peer's end is the cause: say that
                        break
                    finished = True
                    raise exc if isinstance(exc, BaseException) else RuntimeError(text)
            process.join(10)
            if failed_rank is not None:
                yield self._rank_failed(*failed_rank)
            elif not finished:
                yield self._crashed(process.exitcode)
        finally:
            if process.is_alive():  # the consumer stopped early: the run is discarded
                self.request_cancel()
                process.join(STOP_GRACE_S)
                if process.is_alive():
                    process.kill()
            for helper in ranks:  # done with their shares by now, unless the run ended early
                helper.join(0 if process.exitcode else STOP_GRACE_S)
                if helper.is_alive():
                    helper.kill()
                helper.join()
            self.rank_pids = []
            with self._lock:
                self._control = None
                self._pid = None
            process.join()
            control.close()
            events.close()

    def _crashed(self, exitcode: int | None) -> FinishedEvent:
        if exitcode is not None and exitcode < 0:
            try:
                how = f"was ended by signal {signal.Signals(-exitcode).name}"
            except ValueError:
                how = f"was ended by signal {-exitcode}"
        else:
            how = f"ended with exit code {exitcode}"
        where = f"; the last saved checkpoint in {self.output_dir} can be resumed" if self.output_dir else ""
        message = (
            f"The training process {how} before the run finished (out of memory, or killed){where}. "
            "The log file has the details."
        )
        log.error("Phase 2 run %s: %s", self.run_id, message)
        self._record_failure(message)
        return FinishedEvent("failed", str(self.output_dir) if self.output_dir else None, message, None)

    def _requested_now(self) -> tuple | None:
        with self._lock:
            return self._requested

    def _ended_before_training(self, request: tuple) -> FinishedEvent:
        if request[0] == "cancel":
            return FinishedEvent("cancelled", None, "Cancelled: the run was discarded.", None)
        return FinishedEvent("stopped", None, "Stopped before training began.", None)

    def _rank_failed(self, rank: int, exitcode: int) -> FinishedEvent:
        message = (
            f"The process that encodes on GPU {rank} (rank {rank}) stopped before its share was done: it ran "
            f"out of memory or was killed (exit code {exitcode}). The log file has the details; train on one "
            "GPU, or lower the encoding batch."
        )
        log.error("Phase 2 run %s: %s", self.run_id, message)
        self._record_failure(message)
        return FinishedEvent("failed", str(self.output_dir) if self.output_dir else None, message, None)

    def _record_failure(self, message: str) -> None:
        """The child could not say how the run ended: run.json (and the workspace) say it did."""
        if self.run_id is None:
            return
        from cognitivetwin_core.phase2.runs import read_run_file, write_run_file

        record = {
            **self.run_record,
            "status": "failed",
            "outcome": "failed",
            "message": message,
            "ended_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.run_record = record
        try:
            workspace = self._workspace if self._source.get("workspace") else None
            if self.output_dir is not None and read_run_file(self.output_dir) is not None:
                write_run_file(self.output_dir, record, workspace)
            elif workspace is not None:
                workspace.upsert_phase2_run(self.run_id, record)
        except Exception:  # the outcome still reaches the caller as the finished event
            log.warning("could not record the failed Phase 2 run %s", self.run_id, exc_info=True)


# ----- the child ---------------------------------------------------------------------------------


def _free_port() -> int:
    """A loopback port for the ranks to meet on (torchrun's --standalone picks one the same way)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _failed_rank(ranks: list, wait_s: float = 0.0) -> tuple[int, int] | None:
    """(rank, exit code) of the first encoding process that ended badly, if one did."""
    deadline = time.monotonic() + wait_s
    while True:
        for rank, helper in enumerate(ranks, start=1):
            if helper.exitcode not in (None, 0):
                return rank, helper.exitcode
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def _start_child(parent_pid: int, log_to_file: bool) -> None:
    die_with_parent(parent_pid)  # started by the run's own thread, which outlives the child
    yield_to_parent()  # a small niceness costs the training little on an otherwise idle machine
    if log_to_file:
        from cognitivetwin_core.logging_setup import configure_logging

        configure_logging()


def _rank_main(config, source: dict, parent_pid: int, rank: int, world: int, init_method: str, log_to_file: bool):
    """Ranks 1..N-1: encode a share of the conversations, hand it to rank 0, end."""
    _start_child(parent_pid, log_to_file)
    from cognitivetwin_core.phase2.distributed import DistributedContext, encode_for_trainer

    try:
        encode_for_trainer(Phase2Trainer(config, **source), DistributedContext(rank, world, rank), init_method)
    except BaseException:
        log.exception("Phase 2 encoding rank %d failed", rank)
        sys.exit(1)


def _child_main(
    events, control, config, source: dict, parent_pid: int, log_to_file: bool, distributed: tuple | None = None
) -> None:
    _start_child(parent_pid, log_to_file)
    try:
        trainer = Phase2Trainer(config, **source)
        threading.Thread(target=_follow_control, args=(control, trainer), name="control", daemon=True).start()
        if distributed is not None:
            # Rank 0 encodes its share with the others and merges the cache entry; run() then
            # finds it. Stop and Cancel take effect once this shared pass is over.
            from cognitivetwin_core.phase2.distributed import DistributedContext, encode_for_trainer

            world, init_method = distributed
            began = time.monotonic()

            def shared_progress(done: int, total: int, tokens: int) -> None:
                # Rank 0's share, which is about 1/N of the work: its ETA is the pass's.
                elapsed = max(time.monotonic() - began, 1e-6)
                rate = done / elapsed
                eta = (total - done) / rate if rate else None
                events.send(("event", EncodingEvent(done, total, tokens, tokens / elapsed, eta, False)))

            encode_for_trainer(trainer, DistributedContext(0, world, 0), init_method, progress=shared_progress)
            events.send(("shared-done",))  # from here on Stop and Cancel are the trainer's own
        sent = None
        for event in trainer.run():
            identity = (trainer.run_id, str(trainer.output_dir))
            if identity != sent or event.kind not in ("step", "encoding"):
                events.send(("info", trainer.run_id, str(trainer.output_dir), trainer.run_record))
                sent = identity
            events.send(("event", event))
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        if not isinstance(exc, CognitiveTwinError):
            log.exception("Phase 2 training process failed")
        try:
            pickle.loads(pickle.dumps(exc))  # it must also unpickle in the parent
            payload = exc
        except Exception:
            payload = None
        try:
            events.send(("error", payload, repr(exc), traceback.format_exc()))
        except OSError:
            pass
    finally:
        events.close()


def _follow_control(control, trainer: Phase2Trainer) -> None:
    """The child's control thread: requests from the parent; its pipe closing means the parent is gone."""
    while True:
        try:
            message = control.recv()
        except (EOFError, OSError):
            # The parent closed its end without asking (it died, or gave up): stop, keeping
            # what was saved, and do not outlive it for long.
            trainer.request_stop(save=False)
            time.sleep(STOP_GRACE_S)
            os._exit(1)
        if message[0] == "stop":
            trainer.request_stop(save=message[1])
        elif message[0] == "cancel":
            trainer.request_cancel()
