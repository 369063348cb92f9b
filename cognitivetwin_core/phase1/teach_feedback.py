"""Which feedback a Teach run learns from, and in which form.

`ancestry(adapter_dir)` follows the lineage (`parent_adapter`) from a taught twin back to the
adapter it was first taught from: feedback given on any of them is about this twin.
`feedback_to_teach(workspace, adapter_dir)` is that feedback less what was already taught
into the twin or a version it came from (each taught version's lineage lists the feedback
ids it learned from), unless `include_taught`; `taught_into(workspace)` says which version
learned each verdict (what `feedback list` shows). `teaching_data(records)` turns the
records into TRL rows: DPO pairs where the person edited replies, else KTO on the thumbs.
See docs/teaching-and-memory.md.
"""

from __future__ import annotations

from pathlib import Path

from cognitivetwin_core.errors import InputError

DPO, KTO = "dpo", "kto"


def ancestry(adapter_dir: str | Path) -> list[Path]:
    """The adapter folder and the folders it was taught from (lineage `parent_adapter`), nearest first."""
    from cognitivetwin_core.phase1.adapter_archive import read_lineage

    chain: list[Path] = []
    folder: Path | None = Path(adapter_dir).expanduser().resolve()
    while folder is not None and folder not in chain:
        chain.append(folder)
        parent = (read_lineage(folder) or {}).get("parent_adapter")
        folder = Path(parent).resolve() if parent else None
    return chain


def taught_ids(chain: list[Path]) -> set[int]:
    """The feedback ids the versions in `chain` were taught from (their lineages' `feedback_ids`)."""
    from cognitivetwin_core.phase1.adapter_archive import read_lineage

    ids: set[int] = set()
    for folder in chain:
        ids.update(int(i) for i in (read_lineage(folder) or {}).get("feedback_ids") or ())
    return ids


def feedback_to_teach(workspace, adapter_dir: str | Path, *, include_taught: bool = False) -> list:
    """The feedback on this twin and the versions it came from, less what they already learned
    (unless `include_taught`); one sentence when all of it was already taught."""
    from cognitivetwin_core.data.feedback import list_feedback

    chain = ancestry(adapter_dir)
    records = list_feedback(workspace, adapters=chain)
    if include_taught:
        return records
    taught = taught_ids(chain)
    fresh = [r for r in records if r.id not in taught]
    if records and not fresh:
        raise InputError(
            f"All {len(records)} verdicts on this twin were already taught into it ({chain[0].name} or a version "
            "it came from): rate new replies first, or relearn what it already learned (--include-taught)."
        )
    return fresh


def taught_into(workspace) -> dict[int, list[str]]:
    """For each feedback id, the versions of the twin taught from it: adapter folders' names, and
    Together Teach jobs not yet downloaded ("Together job ID")."""
    from cognitivetwin_core.phase1.jobs import read_jobs

    versions: dict[int, list[str]] = {}
    downloaded_jobs = set()
    for adapter in workspace.adapters():
        lineage = adapter.get("lineage") or {}
        if lineage.get("job_id"):
            downloaded_jobs.add(str(lineage["job_id"]))
        for feedback_id in lineage.get("feedback_ids") or ():
            versions.setdefault(int(feedback_id), []).append(Path(adapter["path"]).name)
    for record in read_jobs(workspace, "together"):
        teach = record.extra.get("teach") or {}
        if teach and record.job_id not in downloaded_jobs and not record.failed:
            for feedback_id in teach.get("feedback_ids") or ():
                versions.setdefault(int(feedback_id), []).append(f"Together job {record.job_id}")
    return versions


def teaching_data(records) -> tuple[str, list[dict], list[int]]:
    """(method, TRL rows, the feedback ids used): DPO pairs from edits, else KTO on the thumbs."""
    from cognitivetwin_core.data.feedback import dpo_rows, kto_rows

    rows = dpo_rows(records)
    method = DPO
    if not rows:
        rows = kto_rows(records)
        method = KTO
        labels = {row["label"] for row in rows}
        if labels != {True, False}:
            have = "no feedback" if not rows else "only thumbs up" if True in labels else "only thumbs down"
            raise InputError(
                f'There is {have} on this twin: Teach needs an edited reply ("I\'d say it like this"), or at '
                "least one thumbs up and one thumbs down."
            )
    ids = sorted({row["feedback_id"] for row in rows})
    return method, [{k: v for k, v in row.items() if k != "feedback_id"} for row in rows], ids
