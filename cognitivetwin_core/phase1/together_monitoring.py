"""Phase 1 on Together: watching a job (status, events, steps, ETA), waiting, cancelling (see together_jobs.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import InputError
from cognitivetwin_core.phase1.jobs import TERMINAL_STATUSES, JobUpdate, read_job
from cognitivetwin_core.phase1.monitor import Backoff, follow
from cognitivetwin_core.phase1.together_errors import TogetherServiceError, translate
from cognitivetwin_core.phase1.together_records import sdk_dict

log = logging.getLogger(__name__)

MAX_EVENTS_KEPT = 300


class TogetherMonitoring:
    """Poll a job and its events, wait for its end, cancel it."""

    def poll(self, job_id: str) -> JobUpdate:
        """One round: retrieve the job and its events, store what is new, return it."""
        record = self._record(job_id)
        if job_id.startswith("intent-"):
            return JobUpdate(job_id, record.status or "creating", message=record.error or "")
        try:
            job = sdk_dict(self.client.fine_tuning.retrieve(job_id))
            events = [sdk_dict(e) for e in (self.client.fine_tuning.list_events(job_id).data or [])]
        except Exception as exc:
            raise translate(exc, action=f"checking job {job_id}") from None
        status = str(job.get("status") or "unknown").lower()
        if "." in status:  # a legacy Enum's str(): FinetuneJobStatus.STATUS_COMPLETED
            status = status.rsplit("_", 1)[-1]
        seen = record.events_seen
        if seen > len(events):  # the server trimmed its list: fall back to comparing content
            known = {(e.get("created_at"), e.get("type"), e.get("message")) for e in record.events}
            new = [e for e in events if (e.get("created_at"), e.get("type"), e.get("message")) not in known]
        else:
            new = events[seen:]
        step, total = record.step, record.total_steps
        for event in new:
            kind = str(event.get("type") or "").lower()
            if event.get("total_steps"):
                total = int(event["total_steps"])
            if event.get("step") is not None and kind in (
                "checkpoint_save",
                "epoch_complete",
                "eval_complete",
                "training_progress",
            ):
                step = max(int(event["step"]), int(step or 0))
            if kind == "training_start" and step is None:
                step = 0
        if status == "completed" and total:
            step = total
        now = time.time()
        samples = list(record.step_samples)
        if step is not None and (not samples or samples[-1][1] != step):
            samples = (samples + [[now, step]])[-20:]
        eta = self._eta(samples, total, job, status)
        all_events = (list(record.events) + new)[-MAX_EVENTS_KEPT:]
        message = (
            self._failure_message(job_id, status, all_events) if status in ("error", "user_error", "cancelled") else ""
        )
        fields = dict(
            status=status,
            events=all_events,
            events_seen=len(events),
            step=step,
            total_steps=total,
            epochs_completed=job.get("epochs_completed"),
            eta_seconds=eta,
            step_samples=samples,
            output_name=job.get("model_output_name") or record.output_name,
        )
        if message:
            fields["error"] = message
        self._store(job_id, **fields)
        return JobUpdate(
            job_id,
            status,
            new_events=new,
            step=step,
            total_steps=total,
            epochs_completed=job.get("epochs_completed"),
            eta_seconds=eta,
            adapter_path=record.adapter_path,
            message=message,
        )

    @staticmethod
    def _eta(samples: list, total: int | None, job: dict, status: str) -> float | None:
        if status in TERMINAL_STATUSES:
            return None
        if total and len(samples) >= 2:
            (t0, s0), (t1, s1) = samples[0], samples[-1]
            if s1 > s0 and t1 > t0:
                return max(0.0, (total - s1) * (t1 - t0) / (s1 - s0))
        progress = job.get("progress") or {}
        if progress.get("estimate_available") and progress.get("seconds_remaining") is not None:
            return float(progress["seconds_remaining"])
        return None

    @staticmethod
    def _failure_message(job_id: str, status: str, events: list[dict]) -> str:
        last = [str(e.get("message") or e.get("type")) for e in events[-3:]]
        detail = "; ".join(last) if last else "no events"
        if status == "user_error":
            return (
                f"Together stopped job {job_id} because of a problem with its inputs (last events: "
                f"{detail}); fix the data or settings and launch again."
            )
        if status == "cancelled":
            return (
                f"Job {job_id} was cancelled (last events: {detail}); if you did not cancel it, check "
                "the account's balance on api.together.ai."
            )
        return (
            f"Job {job_id} failed on Together's side (last events: {detail}); launch it again, and "
            "contact Together support if it keeps failing."
        )

    def wait(
        self,
        job_id: str,
        *,
        on_update: Callable[[JobUpdate], None] | None = None,
        cancellation: Cancellation | None = None,
        max_transient_failures: int = 8,
    ) -> JobUpdate:
        """Poll with backoff until the job ends (or `cancellation` is cancelled); return the last update."""
        return follow(
            lambda: self.poll(job_id),
            backoff=Backoff(self.poll_interval, self.max_poll_interval, max_failures=max_transient_failures),
            on_update=on_update,
            cancellation=cancellation,
            stop_message=f"Stopped watching job {job_id}; it keeps running on Together.",
            retry_on=(TogetherServiceError,),
            on_retry=lambda exc, delay: log.info(
                "transient failure watching %s (%s); retrying in %.0fs", job_id, getattr(exc, "kind", "?"), delay
            ),
            sleep=self._sleep,
        )

    def resume_monitoring(
        self, *, on_update: Callable[[JobUpdate], None] | None = None, cancellation: Cancellation | None = None
    ) -> dict[str, JobUpdate]:
        """After a restart: watch every unfinished job to its end (one after the other)."""
        return {
            job_id: self.wait(job_id, on_update=on_update, cancellation=cancellation)
            for job_id in self.unfinished_jobs()
        }

    def cancel(self, job_id: str) -> JobUpdate:
        record = self._record(job_id)
        if record.status in TERMINAL_STATUSES:
            raise InputError(f"Job {job_id} is already {record.status}; there is nothing to cancel.")
        try:
            job = sdk_dict(self.client.fine_tuning.cancel(job_id))
        except Exception as exc:
            raise translate(exc, action=f"cancelling job {job_id}") from None
        status = str(job.get("status") or "cancel_requested").lower()
        self._store(job_id, status=status)
        return JobUpdate(job_id, status)

    def check(self, job_id: str) -> JobUpdate:
        """`poll` for a job that may not be in this workspace yet (e.g. made elsewhere)."""
        if read_job(self.workspace, job_id) is None:
            try:
                job = sdk_dict(self.client.fine_tuning.retrieve(job_id))
            except Exception as exc:
                raise translate(exc, action=f"looking up job {job_id}") from None
            spec_model = job.get("model")
            self._store(
                job_id,
                backend=self.name,
                status=job.get("status"),
                model_id=spec_model,
                base_model=None,
                suffix=job.get("suffix"),
                training_file=job.get("training_file"),
                events=[],
                events_seen=0,
                output_name=job.get("model_output_name"),
            )
        return self.poll(job_id)
