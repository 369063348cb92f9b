"""Readable names for Phase 1 jobs, as Phase 2 runs have (`phase2/run_names.py`).

    job_name(record)   -> "SmolLM2 135M · this computer · 7 Dec 02:45"
    adapter_name(workspace_adapter_record) -> the same name for the adapter it left

A job's id (`local-6f2af0bfc6d9`, `ft-…` on Together) stays what the backends and the
workspace use; the name is only what a person reads, and the id goes into the tooltip.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cognitivetwin_core.phase1.jobs import JobRecord

WHERE = {"local": "this computer", "together": "Together AI"}


def base_name(base_model: str | None) -> str:
    """The base's short display name ("SmolLM2 135M"), or its folder's name."""
    from cognitivetwin_core.models.catalog import short_label

    return short_label(base_model)


def _started(created_at: str | None) -> str | None:
    if not created_at:
        return None
    try:
        when = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:  # the workspace stores its times in UTC
        when = when.replace(tzinfo=UTC)
    when = when.astimezone()
    return f"{when.day} {when.strftime('%b %H:%M')}"


def job_name(record: JobRecord) -> str:
    """What the person reads for a job: its base, where it trains, when it started (and the
    suffix the person gave, when there is one)."""
    parts = [record.suffix] if record.suffix else []
    parts.append(base_name(record.base_model or record.model_id))
    parts.append(WHERE.get(record.backend or "", record.backend or "?"))
    started = _started(record.created_at)
    if started:
        parts.append(started)
    return " · ".join(parts)


def adapter_name(record: dict) -> str:
    """A registered adapter (`Workspace.adapters()`), named as the job that trained it."""
    lineage = record.get("lineage") or {}
    return job_name(
        JobRecord(
            job_id=str(record.get("adapter_id")),
            backend=lineage.get("backend"),
            base_model=lineage.get("base_model") or lineage.get("base"),
            created_at=record.get("created_at"),
        )
    )
