"""The Phase 2 tab's Runs page: every run of the workspace (lineage, outcome, key metrics, from
`cognitivetwin_core.phase2.runs`), the selected run's lineage, two runs' per-epoch curves
compared on the same axes, and a Resume button (the tab does the resuming)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.widgets.live_plot import LivePlot
from app.widgets.message_label import MessageLabel
from app.widgets.run_summary_card import HEAD_METRICS
from cognitivetwin_core.phase2.run_names import run_name
from cognitivetwin_core.phase2.runs import epoch_curves, list_runs

COMPARE_COLORS = [(28, 126, 214), (230, 119, 0)]
RESUMABLE = ("stopped", "failed", "interrupted", "running")
RUN_COLUMNS = [
    "Run",
    "Started",
    "Outcome",
    "Base",
    "Adapter",
    "Data",
    "Epochs",
    "Val loss",
    "Pattern accuracy (guessing)",
    "Folder",
]


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def read_runs(workspace) -> list[dict]:
    """Every Phase 2 run of `workspace` as the flat dicts the table shows; newest first."""
    return [record.to_dict() for record in list_runs(workspace)]


class Phase2RunsPanel(QWidget):
    """Signals: `resumeRequested()` when Resume is pressed on the selected run."""

    resumeRequested = Signal()

    def __init__(self, message: MessageLabel, is_running: Callable[[], bool], parent: QWidget | None = None):
        super().__init__(parent)
        self.message = message
        self.is_running = is_running
        self.workspace = None
        layout = QVBoxLayout(self)
        self.runs_table = QTableWidget(0, len(RUN_COLUMNS))
        self.runs_table.setHorizontalHeaderLabels(RUN_COLUMNS)
        self.runs_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # Only the name column is editable (its items' flags): double-click a name to rename the run.
        self.runs_table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.runs_table.itemChanged.connect(self._item_edited)
        self.runs_table.verticalHeader().hide()
        self.runs_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.runs_table.horizontalHeader().setStretchLastSection(True)
        self.runs_table.itemSelectionChanged.connect(self.update_buttons)
        buttons = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.compare_button = QPushButton("Compare the two selected")
        self.resume_button = QPushButton("Resume the selected run")
        self.refresh_button.clicked.connect(lambda: self.refresh(self.workspace))
        self.compare_button.clicked.connect(lambda: self.compare_selected())
        self.resume_button.clicked.connect(self.resumeRequested.emit)
        hint = QLabel(
            "Double-click a name to rename a run. Select two runs to compare their curves; "
            "select a stopped run to resume it."
        )
        hint.setProperty("role", "hint")
        hint.setWordWrap(True)  # unwrapped, it made the tab (and the window) 900 px wide
        buttons.addWidget(hint, 1)
        for button in (self.refresh_button, self.compare_button, self.resume_button):
            buttons.addWidget(button)
        self.lineage = QLabel()
        self.lineage.setWordWrap(True)
        self.lineage.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lineage.setProperty("role", "hint")
        self._compare_plots_layout = QHBoxLayout()
        layout.addWidget(self.runs_table, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.lineage)
        layout.addLayout(self._compare_plots_layout, 2)
        self.runs: list[dict] = []
        self.update_buttons()

    def ensure_plots(self) -> None:
        if hasattr(self, "compare_loss_plot"):
            return
        self.compare_loss_plot = LivePlot("Loss per epoch (solid: train, dashed: validation)", x_label="epoch")
        self.compare_metric_plot = LivePlot("Pattern accuracy (0 to 1) per epoch", x_label="epoch")
        self._compare_plots_layout.addWidget(self.compare_loss_plot)
        self._compare_plots_layout.addWidget(self.compare_metric_plot)

    def refresh(self, workspace=None) -> None:
        """Read the runs of `workspace` (None: none) again and redraw the table."""
        self.workspace = workspace
        self.runs = read_runs(workspace) if workspace is not None else []
        self.runs_table.blockSignals(True)  # filling the table is not the person renaming
        self.runs_table.setRowCount(len(self.runs))
        for row, run in enumerate(self.runs):
            data = run.get("data") or {}
            metrics = run.get("metrics") or {}
            epochs_done = [e for e in metrics.get("epochs", []) if e.get("epoch") is not None]
            last = epochs_done[-1] if epochs_done else {}
            best_epoch = metrics.get("best_epoch")
            best = next((e for e in epochs_done if e.get("epoch") == best_epoch), last)
            final = run.get("final_metrics") or best.get("metrics") or {}
            outcome = run.get("outcome") or run.get("status") or "?"
            if metrics.get("overfitting"):
                outcome += " · overfitting flagged"
            params = run.get("parameters") or {}
            selection = run.get("studio_data_selection")
            data_text = f"{data.get('conversations', '?')} conv. · {str(data.get('hash', ''))[:8]}" + (
                f" · {selection['source']}" if selection and selection.get("source") else ""
            )
            f1, f1_base = final.get("pattern_macro_f1"), final.get("pattern_macro_f1_baseline")
            cells = [
                run_name(run),
                (run.get("started_at") or "")[:19].replace("T", " "),
                outcome,
                Path(str(run.get("base_model", ""))).name if run.get("base_model") else "",
                Path(str(run["adapter"])).name if run.get("adapter") else "none",
                data_text,
                f"{len(epochs_done)}/{params.get('epochs', '?')}"
                + (f" (kept {best_epoch})" if best_epoch is not None else ""),
                _fmt(best.get("validation", {}).get("total")),
                f"{_fmt(f1)} ({_fmt(f1_base)})",
                run.get("output_dir", ""),
            ]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                if column == 0 and run.get("exists"):
                    item.setToolTip(f"{text}\nDouble-click to rename this run (id {run.get('run_id')}).")
                else:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                    item.setToolTip(
                        json.dumps({k: v for k, v in run.items() if k != "metrics"}, indent=1, default=str)[:3000]
                    )
                self.runs_table.setItem(row, column, item)
        self.runs_table.blockSignals(False)
        self.update_buttons()

    def rename(self, row: int, name: str) -> bool:
        """Give the run in `row` a new name (its run.json and the workspace's record)."""
        from cognitivetwin_core.errors import CognitiveTwinError
        from cognitivetwin_core.phase2.run_names import rename_run

        run = self.runs[row]
        try:
            record = rename_run(run["output_dir"], name, workspace=self.workspace)
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
            self.refresh(self.workspace)
            return False
        run["name"] = record["name"]
        self.message.show_info(f"Renamed the run to “{record['name']}”.")
        return True

    def _item_edited(self, item: QTableWidgetItem) -> None:
        if item.column() != 0 or item.row() >= len(self.runs):
            return
        if item.text().strip() != run_name(self.runs[item.row()]):
            self.rename(item.row(), item.text())

    def selected_runs(self) -> list[dict]:
        rows = sorted({index.row() for index in self.runs_table.selectionModel().selectedRows()})
        return [self.runs[row] for row in rows if row < len(self.runs)]

    def select_runs(self, run_ids: list[str]) -> None:
        self.runs_table.clearSelection()
        mode = self.runs_table.selectionMode()
        self.runs_table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row, run in enumerate(self.runs):
            if run.get("run_id") in run_ids:
                self.runs_table.selectRow(row)
        self.runs_table.setSelectionMode(mode)

    def update_buttons(self) -> None:
        """Enable Compare/Resume for what is selected and show the selected run's lineage."""
        selected = self.selected_runs()
        self.compare_button.setEnabled(len(selected) == 2)
        running = self.is_running()
        self.resume_button.setEnabled(
            len(selected) == 1
            and not running
            and (selected[0].get("outcome") in RESUMABLE)
            and selected[0].get("exists", False)
        )
        if len(selected) == 1:
            run = selected[0]
            data = run.get("data") or {}
            self.lineage.setText(
                f"Run “{run_name(run)}” ({run.get('run_id')}): base {run.get('base_model')}, adapter {run.get('adapter') or 'none'}, "
                f"data {data.get('kind', '?')} {data.get('path', '')} ({data.get('conversations', '?')} conversations, "
                f"{data.get('messages', '?')} messages, hash {str(data.get('hash', ''))[:12]}), device {run.get('device', '?')}, "
                f"{run.get('started_at', '?')} → {run.get('ended_at') or '…'}: {run.get('message', run.get('outcome', ''))}"
            )
        else:
            self.lineage.setText("")

    def compare_selected(self) -> bool:
        """Draw the two selected runs' per-epoch curves on the same axes."""
        selected = self.selected_runs()
        if len(selected) != 2:
            self.message.show_error("Select exactly two runs to compare (Ctrl+click the second).")
            return False
        self.ensure_plots()
        self.compare_loss_plot.clear()
        self.compare_metric_plot.clear()
        for run, color in zip(selected, COMPARE_COLORS):
            name, label = str(run.get("run_id")), run_name(run)
            curves = epoch_curves(run.get("metrics"), [key for key, *_ in HEAD_METRICS])
            self.compare_loss_plot.add_series(f"{name} train", color, symbol="o", label=f"{label} train")
            self.compare_loss_plot.add_series(
                f"{name} validation", color, symbol="t", dashed=True, label=f"{label} validation"
            )
            self.compare_metric_plot.add_series(name, color, symbol="o", label=label)
            self.compare_loss_plot.set_points(f"{name} train", *curves.get("train loss", ([], [])))
            self.compare_loss_plot.set_points(f"{name} validation", *curves.get("validation loss", ([], [])))
            self.compare_metric_plot.set_points(name, *curves.get("pattern_macro_f1", ([], [])))
        self.compare_loss_plot.flush()
        self.compare_metric_plot.flush()
        return True
