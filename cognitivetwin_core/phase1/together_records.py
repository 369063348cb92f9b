"""A Together job's record in the workspace: storing fields, reading one, listing them (see together_jobs.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.phase1.jobs import JobRecord, read_job, read_jobs, unfinished_jobs


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sdk_dict(obj) -> dict:
    """A pydantic SDK object as a plain dict with wire names (e.g. model_output_name)."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.model_dump(by_alias=True, mode="json")


class TogetherRecords:
    """The job records of the workspace: store, read and list Together jobs."""

    def _store(self, job_id: str, **fields) -> None:
        fields["updated"] = now_iso()
        self.workspace.upsert_phase1_job(job_id, fields)

    def _record(self, job_id: str) -> JobRecord:
        record = read_job(self.workspace, job_id)
        if record is None or record.backend != "together":
            raise InputError(f"No Together job {job_id} in this workspace: see `cognitivetwin phase1 --list`.")
        return record

    def jobs(self) -> list[JobRecord]:
        return read_jobs(self.workspace, "together")

    def unfinished_jobs(self) -> list[str]:
        return unfinished_jobs(self.jobs(), "together")
