"""Which feedback a Teach run learns from, and in which form.

`ancestry(adapter_dir)` follows the lineage (`parent_adapter`) from a taught twin back to the
adapter it was first taught from: feedback given on any of them is about this twin.
`teaching_data(records)` turns the records into TRL rows: DPO pairs where the person edited
replies, else KTO on the thumbs. See docs/teaching-and-memory.md.
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
