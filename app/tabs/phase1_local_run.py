"""The Phase 1 controller's local LoRA run: launched in a supervised child (LocalLoraProcess),
followed by a BackgroundJob thread, its messages relayed on the GUI thread (see
phase1_controller.py).
"""

from __future__ import annotations

from PySide6.QtCore import Slot

from app.tabs.phase1_log_stamps import clock_stamp
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.phase1.jobs import DryRun, JobUpdate, Phase1Settings
from cognitivetwin_core.phase1.local_lora_process import LocalJobLaunched, LocalLoraProcess


def follow_local_process(progress, cancelled, process: LocalLoraProcess) -> JobUpdate | None:
    """Hand each message of the local run's child to the GUI; its last (terminal) update."""
    last = None
    for message in process.run():
        progress(message)
        last = message
    return last


class Phase1LocalRun:
    """A local LoRA run in its supervised child: launch, resume, and its messages relayed on the
    GUI thread."""

    def _launch_local(self, plan: DryRun, job_id: str | None) -> str | None:
        try:
            backend = self._require_local()
        except CognitiveTwinError as exc:
            self.failed.emit("launch", str(exc))
            return None
        if self.local_job.is_running():
            self.failed.emit("launch", "A local run is already going: wait for it to end or cancel it first.")
            return None
        self.local_process = LocalLoraProcess(self.workspace, plan, job_id=job_id, options=backend.options)
        self.local_job_id = self.local_process.job_id
        self.local_job.start(follow_local_process, self.local_process)
        return self.local_job_id

    async def resume_local(self, job_id: str) -> str | None:
        """Launch a stopped local run again under its id: it resumes from its last checkpoint."""
        record = self.job(job_id)
        if record is None or record.backend != "local":
            self.failed.emit("resume", f"No local job {job_id} in this workspace.")
            return None
        known = Phase1Settings.__dataclass_fields__
        stored = {k: v for k, v in record.settings.items() if k in known}
        if stored.get("target_modules") is not None:
            stored["target_modules"] = tuple(stored["target_modules"])
        settings = Phase1Settings(**stored)
        plan = await self.dry_run("local", record.data_path or "", settings)
        if plan is None:
            return None
        return self._launch_local(plan, job_id)

    @Slot(object)
    def _on_local_progress(self, message) -> None:
        if isinstance(message, LocalJobLaunched):
            job_id = message.job_id
            self._ended.discard(job_id)  # a resumed run ends (and is announced) again
            self.cancel_requested.discard(job_id)
            self.logLine.emit(f"{clock_stamp()} {job_id}: local LoRA started")
            self.launched.emit(job_id)
            self.jobsChanged.emit()
        elif isinstance(message, JobUpdate):
            self._relay_update(message)

    @Slot(object)
    def _on_local_done(self, update: JobUpdate | None) -> None:
        if update is not None:
            self._end(update)

    @Slot(object)
    def _on_local_failed(self, exc) -> None:
        job_id = self.local_job_id
        message = str(exc) if isinstance(exc, CognitiveTwinError) else f"The local run stopped unexpectedly: {exc}"
        record = self.job(job_id)
        if record is not None and record.terminal:
            # e.g. Cancel raced the run's own end: the record says how it really ended.
            self._end(JobUpdate(job_id, record.status, message=record.error or ""))
            return
        self.failed.emit("local run", message)
        self.jobsChanged.emit()
