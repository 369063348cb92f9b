"""Did teaching help? The before/after panel under Teach in the Playground's Chat page.

`TeachComparePanel` judges a taught version against the one it was taught from on the same
held-out conversations (cognitivetwin_core/playground/judges/teach_comparison.py): held-out
perplexity, the authorship judge and the blind test, each in words with its scale. It runs
after a Teach run finishes and on demand ("Compare with the version before"), in a supervised
child process followed from a `BackgroundJob` thread, never on the GUI thread; a comparison
already saved beside the version is shown at once. See docs/judging.md §9.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.qt.background_job import BackgroundJob
from app.widgets.message_label import MessageLabel
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.playground.judges.teach_comparison import (
    comparison_lines,
    comparison_summary,
    load_comparison,
    parent_version,
)

APP_MAX_EXAMPLES = 8  # held-out messages both versions answer: a minute or two on a CPU


def run_comparison(progress, cancelled, process) -> dict:
    """The job: hand the child's progress to the GUI; its report."""
    from cognitivetwin_core.playground.teach_comparison_process import ComparisonProgress, ComparisonReport

    for message in process.run():
        if isinstance(message, ComparisonProgress):
            progress(message.text)
        elif isinstance(message, ComparisonReport):
            return message.report
    raise CognitiveTwinError("The comparison ended without a result; the log file has the details.")


class TeachComparePanel(QWidget):
    """ "Compare with the version before", Stop, and each judge's verdict in words."""

    compared = Signal(dict)
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.adapter_dir: str | None = None
        self.max_examples = APP_MAX_EXAMPLES
        self._process = None
        self.job = BackgroundJob(self, name="teach-comparison")
        self.job.progress.connect(self._on_progress)
        self.job.succeeded.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.job.cancelled.connect(self._on_cancelled)
        self.job.finished.connect(self._update_buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.compare_button = QPushButton("Compare with the version before")
        self.compare_button.setToolTip(
            "Judges this taught version against the one it was taught from, on conversations neither trained on "
            "and none of your feedback: held-out perplexity, the authorship judge and the blind test"
        )
        self.stop_button = QPushButton("Stop comparing")
        self.status = QLabel("")
        self.status.setProperty("role", "hint")
        row.addWidget(self.compare_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.status, 1)
        layout.addLayout(row)
        self.message = MessageLabel()
        layout.addWidget(self.message)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setProperty("role", "hint")
        self.details.hide()
        layout.addWidget(self.details)
        self.compare_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self._update_buttons()

    def set_target(self, workspace, adapter_dir: str | None) -> None:
        """The chosen twin: comparable when it was taught from another version."""
        self.workspace = workspace
        if adapter_dir != self.adapter_dir and not self.job.is_running():
            self.adapter_dir = adapter_dir
            saved = load_comparison(adapter_dir) if adapter_dir else None
            if saved is not None:
                self._show(saved)
            else:
                self.message.clear_message()
                self.details.hide()
        self._update_buttons()

    def compare_after(self, adapter_dir: str) -> bool:
        """Teach finished: compare the new version with its parent."""
        if self.job.is_running():
            return False
        self.adapter_dir = adapter_dir
        return self.start()

    def is_busy(self) -> bool:
        return self.job.is_running()

    def shutdown(self) -> None:
        self.stop()
        self.job.wait()

    def start(self) -> bool:
        if self.job.is_running() or self.workspace is None or not self.adapter_dir:
            return False
        before = parent_version(self.adapter_dir)
        if before is None:
            return False
        from cognitivetwin_core.playground.teach_comparison_process import TeachComparisonProcess

        self._process = TeachComparisonProcess(
            before, self.adapter_dir, self.workspace.path, max_examples=self.max_examples
        )
        self.message.clear_message()
        self.details.hide()
        self.status.setText("Comparing the new version with the one before…")
        self.job.start(run_comparison, self._process)
        self._update_buttons()
        return True

    def stop(self) -> None:
        if self.job.is_running() and self._process is not None:
            self._process.request_cancel()
            self.job.cancel()
            self.status.setText("Stopping the comparison…")

    def _on_progress(self, text) -> None:
        self.status.setText(str(text))

    def _on_done(self, report: dict) -> None:
        self.status.setText("")
        self._show(report)
        self.compared.emit(report)

    def _show(self, report: dict) -> None:
        self.message.show_info(f"Before and after teaching: {comparison_summary(report)}.")
        from cognitivetwin_core.glossary import explain

        text = "\n".join(comparison_lines(report))
        self.details.setText(text)
        self.details.setToolTip(explain(text))  # the exact terms, in plain words
        self.details.show()

    def _on_failed(self, exc) -> None:
        text = str(exc) if isinstance(exc, CognitiveTwinError) else f"The comparison failed unexpectedly ({exc})."
        self.message.show_error(text)
        self.status.setText("")
        self.failed.emit(text)

    def _on_cancelled(self) -> None:
        self.status.setText("Comparison stopped.")

    def _update_buttons(self, *_args) -> None:
        busy = self.job.is_running()
        taught = bool(self.adapter_dir) and parent_version(self.adapter_dir) is not None
        self.compare_button.setEnabled(not busy and self.workspace is not None and taught)
        self.compare_button.setVisible(taught or busy)
        self.stop_button.setVisible(busy)
