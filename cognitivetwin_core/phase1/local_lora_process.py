"""A local LoRA job in a supervised child process, so that the caller (the window) never runs
a model or imports torch: the same protocol as Phase 2's training (supervised_child.py).

    process = LocalLoraProcess(workspace, plan)          # the plan of a local dry run
    for message in process.run():     # LocalJobLaunched, then JobUpdates; the last is terminal
        ...
    process.request_cancel()          # from any thread: the run saves a checkpoint and stops

The child opens the workspace itself, launches the job with `LocalLoraJobs` (local_jobs.py)
and follows it, sending each `JobUpdate` that has something new. Its job record is written
there, as a CLI run's would be. A child that ends without finishing (killed, out of memory)
ends the job as failed, with one sentence, in its record and as the last update; the
checkpoint it saved stays, so launching the job again resumes from it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.phase1.jobs import DryRun, JobUpdate, read_job
from cognitivetwin_core.phase1.local_jobs import LocalLoraJobs, new_local_job_id
from cognitivetwin_core.supervised_child import ChildChannel, ChildCrashedError, SupervisedChild

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalJobLaunched:
    """The child has recorded the job and started training it."""

    job_id: str


class LocalLoraProcess:
    """One local LoRA job run in a spawned child; `options` as `LocalLoraJobs` takes them."""

    def __init__(self, workspace, plan: DryRun, *, job_id: str | None = None, options: dict | None = None):
        self.workspace_path = str(getattr(workspace, "path", workspace))
        self.plan = plan
        self.job_id = job_id or new_local_job_id()
        self.child = SupervisedChild(
            _run_local_job,
            (self.workspace_path, plan, self.job_id, dict(options or {})),
            name=f"local-lora-{self.job_id}",
            what="The local training process",
        )

    def request_cancel(self) -> None:
        self.child.request_cancel()

    @property
    def pid(self) -> int | None:
        return self.child.pid

    def run(self) -> Iterator[LocalJobLaunched | JobUpdate]:
        """The child's messages; raises what the launch raised there (a user's error)."""
        try:
            yield from self.child.events()
        except ChildCrashedError as exc:
            yield self._record_crash(str(exc) + " Launching it again resumes from its last checkpoint.")

    def _record_crash(self, message: str) -> JobUpdate:
        """The child could not say how the job ended: its record says it failed."""
        from cognitivetwin_core.data.workspace import Workspace

        try:
            with Workspace.open(self.workspace_path) as workspace:  # its own connection: any thread
                record = read_job(workspace, self.job_id)
                if record is not None and not record.terminal:
                    LocalLoraJobs.record_failure(workspace, self.job_id, message)
        except Exception:  # the outcome still reaches the caller as the last update
            log.warning("could not record the failed local job %s", self.job_id, exc_info=True)
        return JobUpdate(self.job_id, "error", message=message)


def _run_local_job(channel: ChildChannel, workspace_path: str, plan: DryRun, job_id: str, options: dict) -> None:
    """In the child: launch the job and follow it to its end, sending every update."""
    import torch

    from cognitivetwin_core.data.workspace import Workspace

    # Leave the window a core while training computes (docs/qt.md §9).
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    with Workspace.open(Path(workspace_path)) as workspace:
        backend = LocalLoraJobs(workspace, **options)
        backend.launch(plan, job_id=job_id)
        channel.send(LocalJobLaunched(job_id))
        backend.wait(job_id, on_update=channel.send, cancellation=channel.cancellation, interval=0.25)
