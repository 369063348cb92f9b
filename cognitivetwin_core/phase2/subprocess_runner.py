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

The child is a `SupervisedChild` (cognitivetwin_core/supervised_child.py: the protocol
local LoRA and the evaluation share); besides the trainer's events it sends, typed:
    `RunInfo(run_id, output_dir, run_record)`  before the first event and with every event
                     other than a step or encoding progress;
    `SharedPassDone()`  past one GPU: the shared encoding pass is over.

Past one GPU (`processes=N`): the parent starts ranks 1..N-1 as well, each encoding a
share of the conversations under torch.distributed (phase2/distributed.py, as under
torchrun; they meet on a loopback port), and rank 0, the child above, merges the shares
into the feature cache and trains. Rank 0 reports the progress of its share (about 1/N of
the pass). Stop or Cancel during that shared pass ends every rank at once (nothing is
written before it ends: the run ends "stopped" or "cancelled" with no output); a rank that
dies ends the run as failed, saying which.

Errors the trainer raises (unusable inputs, before anything is written) are raised again
by `run()` in the caller. The child dies with its parent (supervised_child.py). A child that ends
without its finished event (killed, out of memory, a crash in native code) ends the run as
FinishedEvent(outcome="failed"), also recorded in the run's run.json.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.errors import InputError
from cognitivetwin_core.phase2.trainer import EncodingEvent, FinishedEvent, Phase2Config, Phase2Trainer
from cognitivetwin_core.supervised_child import (
    STOP_GRACE_S,
    CancelRequest,
    ChildChannel,
    ChildFailed,
    ChildFinished,
    StopRequest,
    SupervisedChild,
    crash_sentence,
    raise_failure,
    start_child,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """Where the child's run writes: its id, folder and record (sent as they are decided)."""

    run_id: str | None
    output_dir: str | None
    run_record: dict


@dataclass(frozen=True)
class SharedPassDone:
    """Past one GPU: the encoding pass shared with the other ranks is over."""


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
        self.child: SupervisedChild | None = None
        self._pending: list[StopRequest | CancelRequest] = []  # requests made before run()
        self.rank_pids: list[int] = []  # the encoding ranks 1..N-1 while run() supervises them

    # ----- control (any thread) ------------------------------------------------------------------

    def request_stop(self, save: bool = True) -> None:
        self._request(StopRequest(bool(save)))

    def request_cancel(self) -> None:
        self._request(CancelRequest())

    def _request(self, request: StopRequest | CancelRequest) -> None:
        child = self.child
        if child is None:
            self._pending.append(request)
        elif isinstance(request, StopRequest):
            child.request_stop(request.save)
        else:
            child.request_cancel()

    def kill(self) -> None:
        """End the child now (it did not stop when asked); run() then ends as "failed"."""
        if self.child is not None:
            self.child.kill()

    @property
    def pid(self) -> int | None:
        """The child's pid while run() supervises it."""
        return self.child.pid if self.child is not None else None

    # ----- the run ---------------------------------------------------------------------------------

    def run(self) -> Iterator[object]:
        """Start the child and yield its events; raises what the trainer raised there."""
        context = multiprocessing.get_context("spawn")
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
        child = SupervisedChild(
            _train_in_child,
            (self.config, self._source, distributed),
            name="phase2-training",
            what="The training process",
        )
        pending, self._pending = self._pending, []
        for request in pending:
            self._request_on(child, request)
        self.child = child
        child.start()
        finished = False
        failed_rank = None
        try:
            shared_done = not ranks
            while True:
                request = None if shared_done else child.requested
                if request is not None:
                    while not shared_done:  # rank 0 may just have finished
                        try:
                            message = child.receive(0)
                        except EOFError:
                            break
                        if message is None:
                            break
                        shared_done = isinstance(message, SharedPassDone)
                    if not shared_done:
                        # Stop or Cancel during the shared encoding pass, which one rank cannot
                        # leave half-way: end every rank; nothing but shards was written yet.
                        child.kill()
                        for helper in ranks:
                            helper.kill()
                        finished = True
                        yield self._ended_before_training(request)
                        break
                try:
                    message = child.receive()
                except EOFError:
                    break
                if message is None:
                    failed_rank = _failed_rank(ranks)
                    if failed_rank is not None:
                        # Rank 0 would wait for its peer's share (or fail on a closed socket
                        # with a message of the network library's): end it now.
                        child.kill()
                        break
                    continue
                if isinstance(message, SharedPassDone):
                    shared_done = True
                elif isinstance(message, RunInfo):
                    self.run_id, self.run_record = message.run_id, message.run_record
                    self.output_dir = Path(message.output_dir) if message.output_dir else None
                elif isinstance(message, ChildFinished):
                    continue
                elif isinstance(message, ChildFailed):
                    failed_rank = _failed_rank(ranks, wait_s=2.0)
                    if failed_rank is not None:  # the peer's end is the cause: say that
                        log.error("the Phase 2 training process raised %s\n%s", message.text, message.trace)
                        break
                    finished = True
                    raise_failure(message, "Phase 2 training")
                else:
                    finished = finished or message.kind == "finished"
                    yield message
            child.join(10)
            if failed_rank is not None:
                yield self._rank_failed(*failed_rank)
            elif not finished:
                yield self._crashed(child.exitcode)
        finally:
            child.close(STOP_GRACE_S)
            for helper in ranks:  # done with their shares by now, unless the run ended early
                helper.join(0 if child.exitcode else STOP_GRACE_S)
                if helper.is_alive():
                    helper.kill()
                helper.join()
            self.rank_pids = []

    @staticmethod
    def _request_on(child: SupervisedChild, request: StopRequest | CancelRequest) -> None:
        if isinstance(request, StopRequest):
            child.request_stop(request.save)
        else:
            child.request_cancel()

    def _crashed(self, exitcode: int | None) -> FinishedEvent:
        where = f"; the last saved checkpoint in {self.output_dir} can be resumed" if self.output_dir else ""
        message = crash_sentence("The training process", exitcode, where)
        log.error("Phase 2 run %s: %s", self.run_id, message)
        self._record_failure(message)
        return FinishedEvent("failed", str(self.output_dir) if self.output_dir else None, message, None)

    def _ended_before_training(self, request: StopRequest | CancelRequest) -> FinishedEvent:
        if isinstance(request, CancelRequest):
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
        from cognitivetwin_core.atomic_files import write_json_atomically

        record = {
            **self.run_record,
            "status": "failed",
            "outcome": "failed",
            "message": message,
            "ended_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.run_record = record
        try:
            if self.output_dir is not None and (self.output_dir / "run.json").is_file():
                write_json_atomically(self.output_dir / "run.json", record)
            if self._workspace is not None and self._source.get("workspace"):
                self._workspace.upsert_phase2_run(self.run_id, record)
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


def _rank_main(config, source: dict, parent_pid: int, rank: int, world: int, init_method: str, log_to_file: bool):
    """Ranks 1..N-1: encode a share of the conversations, hand it to rank 0, end."""
    start_child(parent_pid, log_to_file)
    from cognitivetwin_core.phase2.distributed import DistributedContext, encode_for_trainer

    try:
        encode_for_trainer(Phase2Trainer(config, **source), DistributedContext(rank, world, rank), init_method)
    except BaseException:
        log.exception("Phase 2 encoding rank %d failed", rank)
        sys.exit(1)


def _train_in_child(channel: ChildChannel, config, source: dict, distributed: tuple | None = None) -> None:
    trainer = Phase2Trainer(config, **source)

    def on_request(request: StopRequest | CancelRequest) -> None:
        if isinstance(request, StopRequest):
            trainer.request_stop(save=request.save)
        else:
            trainer.request_cancel()

    channel.on_request(on_request)
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
            channel.send(EncodingEvent(done, total, tokens, tokens / elapsed, eta, False))

        encode_for_trainer(trainer, DistributedContext(0, world, 0), init_method, progress=shared_progress)
        channel.send(SharedPassDone())  # from here on Stop and Cancel are the trainer's own
    sent = None
    for event in trainer.run():
        identity = (trainer.run_id, str(trainer.output_dir))
        if identity != sent or event.kind not in ("step", "encoding"):
            channel.send(RunInfo(trainer.run_id, str(trainer.output_dir), trainer.run_record))
            sent = identity
        channel.send(event)
