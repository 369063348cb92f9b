"""The Phase 1 tab's "Open the report" button: for the selected job whose adapter has been
evaluated, writes the judge's report (one HTML page, docs/judging.md) beside the adapter off
the GUI thread and opens it in the browser. Kept apart from the tab: the tab only places it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QPushButton

from app.qt.background_job import BackgroundJob
from cognitivetwin_core.errors import CognitiveTwinError

REPORT_FILE = "report.html"


def write_adapter_report(progress, cancellation, adapter_dir: str, workspace) -> str:
    from cognitivetwin_core.playground.judges.report import write_report

    return str(write_report([adapter_dir], Path(adapter_dir) / REPORT_FILE, workspace=workspace))


class ReportButton(QPushButton):
    """Enabled when the tab's selected job has an evaluation.json; `written(path)` after each report."""

    written = Signal(str)

    def __init__(self, tab):
        super().__init__("Open the report")
        self.tab = tab
        self.open_in_browser = True
        self.setToolTip(
            "One page judging this twin: how surprised it is by your real replies, whether an independent "
            "judge takes its replies for yours, whether they can be told apart, your blind test, examples. "
            "Printable; saved as report.html beside the adapter."
        )
        self.job = BackgroundJob(self, name="Phase 1 report")
        self.job.succeeded.connect(self._on_written)
        self.job.failed.connect(self._on_failed)
        self.job.finished.connect(self.refresh)
        self.clicked.connect(self.open_report)
        tab.jobs_table.selectionModel().selectionChanged.connect(self.refresh)
        tab.controller.evaluationDone.connect(lambda *_: self.refresh())
        self.refresh()

    def adapter_dir(self) -> str | None:
        from cognitivetwin_core.phase1.jobs import read_job
        from cognitivetwin_core.playground.evaluation_file import EVALUATION_FILE

        job_id = self.tab.selected_job_id()
        workspace = getattr(self.tab.controller, "workspace", None)
        if job_id is None or workspace is None:
            return None
        record = read_job(workspace, job_id)
        adapter = record.adapter_path if record is not None else None
        return adapter if adapter and (Path(adapter) / EVALUATION_FILE).is_file() else None

    def refresh(self) -> None:
        self.setEnabled(not self.job.is_running() and self.adapter_dir() is not None)

    def open_report(self) -> bool:
        adapter = self.adapter_dir()
        if adapter is None or self.job.is_running():
            return False
        self.job.start(write_adapter_report, adapter, self.tab.controller.workspace)
        self.setEnabled(False)
        return True

    def _on_written(self, path) -> None:
        self.written.emit(str(path))
        if self.open_in_browser:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def _on_failed(self, exc) -> None:
        text = str(exc) if isinstance(exc, CognitiveTwinError) else f"The report could not be written ({exc})."
        self.tab.message.show_error(text)
