"""The Phase 1 controller's watching of jobs: Together jobs polled with backoff and resumed after a
restart, each update relayed as signals and log lines, cancel and download (see
phase1_controller.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.qt.tasks import start_task
from app.tabs.phase1_log_stamps import clock_stamp, event_stamp
from cognitivetwin_core.durations import format_duration
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.phase1.jobs import JobUpdate, unfinished_jobs
from cognitivetwin_core.phase1.monitor import Backoff, is_transient


class Phase1Monitoring:
    """Together jobs: watch each one (one asyncio task a job), relay its updates and events, end
    it; cancel and download."""

    def resume_monitoring(self) -> list[str]:
        """Watch every unfinished Together job of the workspace again (after a restart)."""
        records = self.jobs()
        unfinished = unfinished_jobs(records, "together")
        if any(r.is_intent and r.status == "creating" for r in records):
            # The app stopped while creating a job: making the manager settles it (see together_jobs).
            start_task(self._reconcile(), name="reconcile Phase 1 launches")
        for job_id in unfinished:
            record = self.job(job_id)
            status = record.status if record is not None else None
            self.logLine.emit(f"{clock_stamp()} {job_id}: resumed watching (last known status: {status})")
            self.watch(job_id)
        # A job that completed but whose download failed or never ran: fetch it now.
        if self.auto_download:
            for record in records:
                if record.backend == "together" and record.status == "completed" and not record.adapter_path:
                    start_task(self.download(record.job_id), name=f"download {record.job_id}")
        return unfinished

    async def _reconcile(self) -> None:
        try:
            manager = await self.together()
        except CognitiveTwinError as exc:
            self.failed.emit(
                "monitor", f"A launch was interrupted when the app stopped and could not be checked: {exc}"
            )
            return
        self.jobsChanged.emit()
        for job_id in manager.unfinished_jobs():
            self.watch(job_id)

    def watch(self, job_id: str) -> None:
        if job_id in self._monitors:
            return
        self._monitors[job_id] = start_task(self._monitor(job_id, self.workspace), name=f"watch {job_id}")

    async def _monitor(self, job_id: str, workspace) -> None:
        from cognitivetwin_core.phase1.together_errors import TogetherServiceError

        backoff = Backoff(self.poll_interval, self.max_poll_interval, max_failures=self.max_transient_failures)
        try:
            while workspace is self.workspace:
                try:
                    manager = await self.together()
                    update = await asyncio.to_thread(manager.poll, job_id)
                except TogetherServiceError as exc:
                    delay = backoff.after_failure(is_transient(exc))
                    if delay is None:
                        self.failed.emit(
                            "monitor",
                            f"{exc} (Stopped watching job {job_id}; it goes on at "
                            "Together. Reopen the workspace to watch it again.)",
                        )
                        return
                    self.logLine.emit(f"{clock_stamp()} {job_id}: {exc} Retrying in {format_duration(delay)}.")
                    await asyncio.sleep(delay)
                    continue
                except CognitiveTwinError as exc:
                    self.failed.emit("monitor", str(exc))
                    return
                if workspace is not self.workspace:
                    return
                delay = backoff.after_update(update)
                self._relay_update(update)
                if update.terminal:
                    await self._finish_together(update)
                    return
                await asyncio.sleep(delay)
        finally:
            if self._monitors.get(job_id) is asyncio.current_task():
                del self._monitors[job_id]

    def _relay_update(self, update: JobUpdate) -> None:
        if self._closed:
            return
        self._live[update.job_id] = update
        for event in update.new_events:
            kind = str(event.get("type") or "")
            if kind == "step" and event.get("loss") is not None:
                self._step_losses.setdefault(update.job_id, []).append(float(event["loss"]))
                self.lossPoint.emit(update.job_id, int(event.get("step") or 0), float(event["loss"]))
                continue  # one line per step would drown the log; the plot shows them
            text = str(event.get("message") or kind.replace("_", " "))
            if kind == "checkpoint":  # local runs: the message is the checkpoint's folder
                text = "checkpoint saved"
            elif kind == "epoch":
                loss = event.get("loss")
                text = f"epoch {event.get('epoch')} done" + (
                    f", loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
                )
            elif kind == "done":
                text = "training done, adapter written"
                losses = self._step_losses.pop(update.job_id, [])
                if len(losses) >= 2:
                    from cognitivetwin_core.training_verdicts import MIN_STEPS_FOR_A_TREND, loss_trend

                    text += ". " + loss_trend(losses, min_points=MIN_STEPS_FOR_A_TREND).message
            extra = f" (step {event['step']})" if event.get("step") not in (None, "") and kind != "start" else ""
            self.logLine.emit(f"{event_stamp(event)} {update.job_id}: {text}{extra}")
        self.jobUpdated.emit(update)
        self.jobsChanged.emit()

    async def _finish_together(self, update: JobUpdate) -> None:
        if update.status == "completed" and self.auto_download:
            record = self.job(update.job_id)
            if record is None or not record.adapter_path:
                await self.download(update.job_id)
        self._end(update)

    def _end(self, update: JobUpdate) -> None:
        if self._closed or update.job_id in self._ended:
            return
        self._ended.add(update.job_id)
        self._live[update.job_id] = update
        if update.failed and update.message and update.job_id not in self.cancel_requested:
            self.failed.emit("job", update.message)
        self.logLine.emit(f"{clock_stamp()} {update.job_id}: {update.status}")
        self.jobEnded.emit(update)
        self.jobsChanged.emit()

    async def cancel(self, job_id: str) -> None:
        record = self.job(job_id)
        if record is None:
            self.failed.emit("cancel", f"No job {job_id} in this workspace.")
            return
        self.cancel_requested.add(job_id)
        if record.backend == "local":
            if self.local_job.is_running() and job_id == self.local_job_id and self.local_process is not None:
                self.logLine.emit(f"{clock_stamp()} {job_id}: cancelling (the run stops after its current step)")
                self.local_process.request_cancel()
            else:
                self.failed.emit("cancel", f"Local job {job_id} is not running in this window; nothing to cancel.")
            return
        self._enter()
        try:
            manager = await self.together()
            update = await asyncio.to_thread(manager.cancel, job_id)
        except CognitiveTwinError as exc:
            self.failed.emit("cancel", str(exc))
            return
        finally:
            self._leave()
        self.logLine.emit(f"{clock_stamp()} {job_id}: cancel requested ({update.status})")
        self.jobsChanged.emit()
        self.watch(job_id)

    async def download(self, job_id: str) -> Path | None:
        """Download a completed Together job's adapter, extract it safely and register it."""
        self._enter()
        self.logLine.emit(f"{clock_stamp()} {job_id}: downloading the adapter")
        try:
            manager = await self.together()
            folder = await asyncio.to_thread(manager.download, job_id)
        except CognitiveTwinError as exc:
            self.failed.emit("download", f"{exc} Press “Download & register” to try again.")
            self.jobsChanged.emit()
            return None
        finally:
            self._leave()
        self.logLine.emit(f"{clock_stamp()} {job_id}: adapter registered in the workspace ({folder})")
        self.adapterReady.emit(job_id, str(folder))
        self.jobsChanged.emit()
        return folder
