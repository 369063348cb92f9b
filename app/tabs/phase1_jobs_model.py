"""The Phase 1 jobs table as a Qt model: one row per job of the workspace, newest first.

`job_cells` turns a job record (and what the running job last said) into the row's texts;
`Phase1JobsModel.set_rows` replaces the rows, telling the view only what changed (the
same jobs in the same order: `dataChanged` for the rows that differ; otherwise a reset),
so a ticking clock never loses the selection or the scroll position. A new column is one
name in `COLUMNS` and one text in `job_cells`.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from cognitivetwin_core.durations import format_duration
from cognitivetwin_core.phase1.job_names import WHERE, base_name, job_name
from cognitivetwin_core.phase1.jobs import JobRecord, is_terminal

COLUMNS = ("Job", "Where", "Base", "Status", "Progress", "Elapsed", "Time left", "Cost", "Adapter", "Evaluation")


@dataclass(frozen=True)
class JobRow:
    job_id: str
    cells: tuple[str, ...]
    tooltip: str  # of the first cell: the job's id, or what went wrong


def job_cells(
    record: JobRecord,
    live,
    *,
    now: float,
    created: float | None,
    ended: float | None,
    cancelling: bool,
    evaluation: str,
) -> JobRow:
    """The row of one job. `live` is the running job's last `JobUpdate` (or None)."""
    status = record.status or "unknown"  # the core stores every status it sees
    step = live.step if live is not None and live.step is not None else record.step
    total = live.total_steps if live is not None and live.total_steps else record.total_steps
    if status == "completed":
        progress = "100%" + (f" ({total}/{total} steps)" if total else "")
    elif step is not None and total:
        progress = f"{100 * min(1.0, step / total):.0f}% (step {step}/{total})"
    else:
        progress = "–"
    end = ended if is_terminal(status) else now
    elapsed = format_duration(end - created) if created and end else "–"
    eta_seconds = live.eta_seconds if live is not None and live.eta_seconds is not None else record.eta_seconds
    eta = format_duration(eta_seconds) if eta_seconds is not None and not is_terminal(status) else "–"
    backend = record.backend or "?"
    if backend == "together":
        price = record.estimate.get("price")
        cost = f"${price:.2f} (estimate)" if isinstance(price, (int, float)) else "not estimated"
    else:
        cost = "free"
    adapter = "ready" if record.adapter_path else ("not downloaded yet" if status == "completed" else "–")
    if cancelling and not is_terminal(status):
        status += " (cancelling)"
    if record.duplicates:
        status += f" · duplicates: {', '.join(record.duplicates)}"
    cells = (
        job_name(record),
        WHERE.get(backend, backend),
        base_name(record.base_model or record.model_id),
        status,
        progress,
        elapsed,
        eta,
        cost,
        adapter,
        evaluation,
    )
    tooltip = f"Job {record.job_id}" + (f"\n{record.error}" if record.error else "")
    return JobRow(record.job_id, cells, tooltip)


class Phase1JobsModel(QAbstractTableModel):
    IdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[JobRow] = []

    def set_rows(self, rows: list[JobRow]) -> None:
        if [row.job_id for row in rows] != [row.job_id for row in self._rows]:
            self.beginResetModel()
            self._rows = list(rows)
            self.endResetModel()
            return
        last = len(COLUMNS) - 1
        for index, (old, new) in enumerate(zip(self._rows, rows, strict=True)):
            if old != new:
                self._rows[index] = new
                self.dataChanged.emit(self.index(index, 0), self.index(index, last))

    def row_of(self, job_id: str) -> int:
        return next((index for index, row in enumerate(self._rows) if row.job_id == job_id), -1)

    def job_id(self, row: int) -> str | None:
        return self._rows[row].job_id if 0 <= row < len(self._rows) else None

    def cells(self, job_id: str) -> dict[str, str] | None:
        row = self.row_of(job_id)
        return dict(zip(COLUMNS, self._rows[row].cells, strict=True)) if row >= 0 else None

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt's name
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(COLUMNS)
        ):
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return row.cells[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.tooltip if index.column() == 0 else row.cells[index.column()]
        if role == self.IdRole:
            return row.job_id
        return None
