"""The Phase 1 tab's jobs: every job of the workspace in a table, its buttons, and what happens when a job ends.

A part of `Phase1Tab` (app/tabs/phase1_tab.py), mixed into it: the widgets and state are
the tab's attributes."""

from __future__ import annotations

import re
import time
from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.qt.tasks import start_task
from app.tabs.phase1_jobs_model import Phase1JobsModel, job_cells
from app.tabs.phase1_log_stamps import parse_time
from app.tabs.phase1_report_button import ReportButton
from cognitivetwin_core.durations import format_duration
from cognitivetwin_core.phase1.job_names import job_name
from cognitivetwin_core.phase1.jobs import JobRecord, JobUpdate, is_terminal, read_job


class Phase1JobsList:
    def _build_jobs_group(self) -> QGroupBox:
        group = QGroupBox("Jobs of this workspace")
        box = QVBoxLayout(group)
        self.jobs_model = Phase1JobsModel(self)
        self.jobs_table = QTableView()
        self.jobs_table.setModel(self.jobs_model)
        self.jobs_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.jobs_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.jobs_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.jobs_table.verticalHeader().hide()
        header = self.jobs_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.jobs_table.selectionModel().selectionChanged.connect(self._update_buttons)
        buttons = QHBoxLayout()
        self.cancel_button = QPushButton("Cancel job")
        self.download_button = QPushButton("Download && register")
        self.download_button.setToolTip(
            "Fetch the finished adapter into the workspace (done automatically when a job completes)."
        )
        self.resume_button = QPushButton("Resume local run")
        self.resume_button.setToolTip("Start a stopped local run again; it continues from its last checkpoint.")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip(
            "Compare the twin with its base on conversations it did not train on: how well it predicts "
            "your real replies, and how its own replies sound (saved as evaluation.json beside the adapter)."
        )
        self.evaluate_button.clicked.connect(lambda: self._on_job_action("evaluate"))
        self.cancel_button.clicked.connect(lambda: self._on_job_action("cancel"))
        self.download_button.clicked.connect(lambda: self._on_job_action("download"))
        self.resume_button.clicked.connect(lambda: self._on_job_action("resume"))
        self.report_button = ReportButton(self)  # app/tabs/phase1_report_button.py
        for button in (
            self.cancel_button,
            self.download_button,
            self.resume_button,
            self.evaluate_button,
            self.report_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        box.addWidget(self.jobs_table, 1)
        box.addLayout(buttons)
        # An evaluation takes minutes: a bar and the time left, not only a table cell.
        self.evaluation_row = QWidget()
        row = QHBoxLayout(self.evaluation_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.evaluation_label = QLabel()
        self.evaluation_label.setWordWrap(True)
        self.evaluation_bar = QProgressBar()
        self.evaluation_bar.setMaximumWidth(220)
        row.addWidget(self.evaluation_label, 1)
        row.addWidget(self.evaluation_bar)
        self.evaluation_row.hide()
        box.addWidget(self.evaluation_row)
        self._evaluation_job: str | None = None
        self._evaluation_started = 0.0
        return group

    def _schedule_refresh(self) -> None:
        if not self._table_timer.isActive():
            self._table_timer.start()

    def selected_job_id(self) -> str | None:
        rows = self.jobs_table.selectionModel().selectedRows()
        return self.jobs_model.job_id(rows[0].row()) if rows else None

    def _select_job(self, job_id: str) -> None:
        row = self.jobs_model.row_of(job_id)
        if row >= 0:
            self.jobs_table.selectRow(row)

    def job_row(self, job_id: str) -> dict[str, str] | None:
        """The cells of `job_id`'s row by column name (for tests and accessibility)."""
        return self.jobs_model.cells(job_id)

    def refresh_jobs(self) -> None:
        selected = self.selected_job_id()
        records = list(reversed(self.controller.jobs()))  # newest first
        self._job_names = {record.job_id: job_name(record) for record in records}
        now = time.time()
        self.jobs_model.set_rows(
            [
                job_cells(
                    record,
                    self.controller.live_update(record.job_id),
                    now=now,
                    created=parse_time(record.created_at),
                    ended=parse_time(record.updated_at),
                    cancelling=record.job_id in self.controller.cancel_requested,
                    evaluation=self._evaluation_cell(record),
                )
                for record in records
            ]
        )
        if selected and self.jobs_model.row_of(selected) >= 0:
            self._select_job(selected)
        elif records and not self.jobs_table.selectionModel().hasSelection():
            # The newest job is the one a person means: its buttons (Cancel, Evaluate) work
            # without clicking its row first.
            self._select_job(records[0].job_id)
        self._show_last_local_run(records)
        any_running = any(not record.terminal for record in records)
        if any_running and not self._clock.isActive():
            self._clock.start()
        elif not any_running:
            self._clock.stop()
        self._update_buttons()

    def _evaluation_cell(self, record: JobRecord) -> str:
        """The headline of the adapter's evaluation.json (read again only when the file changed)."""
        from cognitivetwin_core.playground.evaluation import EVALUATION_FILE, headline, load_evaluation

        job_id = record.job_id
        if job_id == self.controller.evaluating_job_id:
            return self._evaluation_status.get(job_id, "evaluating…")
        folder = record.adapter_path
        path = Path(folder) / EVALUATION_FILE if folder else None
        if path is None or not path.is_file():
            return "–"
        stamp = path.stat().st_mtime_ns
        cached = self._evaluation_cache.get(str(path))
        if cached is None or cached[0] != stamp:
            cached = (stamp, headline(load_evaluation(folder)) or "–")
            self._evaluation_cache[str(path)] = cached
        return cached[1]

    def _job_name(self, job_id: str) -> str:
        """The job's readable name (`phase1/job_names.py`); its id only when it has no record."""
        record = self._record(job_id)
        return job_name(record) if record is not None else job_id

    def _record(self, job_id: str | None) -> JobRecord | None:
        if job_id is None or self.workspace is None:
            return None
        return read_job(self.workspace, job_id)

    def _update_buttons(self, *_args) -> None:
        if not self.controller.evaluate_job.is_running():
            self._hide_evaluation_progress()
        busy = self.controller.is_busy()
        has_workspace = self.workspace is not None
        check = self.launch_check()
        self._show_launch_check(check)
        self.dry_run_button.setEnabled(has_workspace and not busy and check.ok)
        self.launch_button.setEnabled(has_workspace and not busy and check.ok and self.plan is not None)
        self.data_export.setEnabled(has_workspace and not self.export_job.is_running())
        record = self._record(self.selected_job_id())
        status = record.status if record is not None else None
        local_running = self.controller.local_job.is_running()
        if record is None:
            cancel = download = resume = False
        elif record.backend == "local":
            cancel = local_running and record.job_id == self.controller.local_job_id and not is_terminal(status)
            download = False
            resume = not local_running and status in ("cancelled", "interrupted", "error") and bool(record.data_path)
        else:
            cancel = not is_terminal(status) and not record.is_intent
            download = status == "completed" and not record.adapter_path
            resume = False
        self.evaluate_button.setEnabled(
            record is not None
            and status == "completed"
            and bool(record.adapter_path)
            and not self.controller.evaluate_job.is_running()
        )
        self.cancel_button.setEnabled(cancel and not busy)
        self.download_button.setEnabled(download and not busy)
        self.resume_button.setEnabled(resume and not busy)

    def _on_job_action(self, action: str) -> None:
        job_id = self.selected_job_id()
        if job_id is None:
            return
        if action != "evaluate":  # the finished run's words stay while its evaluation runs
            self.message.clear_message()
        if action == "cancel":
            start_task(self.controller.cancel(job_id), name=f"cancel {job_id}")
        elif action == "download":
            start_task(self.controller.download(job_id), name=f"download {job_id}")
        elif action == "evaluate":
            if self.controller.evaluate(job_id):
                self.append_log(f"evaluating {self._job_name(job_id)} against its base…")
        elif action == "resume":
            self._reset_plot()
            self._local_plot_job = job_id
            self.loss_status.setText(f"{self._job_name(job_id)}: resuming from its last checkpoint…")
            start_task(self.controller.resume_local(job_id), name=f"resume {job_id}")
        self._update_buttons()

    def _on_busy(self, busy: bool) -> None:
        if not busy:
            self.upload_progress.hide()
        self._update_buttons()

    def _on_failed(self, action: str, message: str) -> None:
        if action == "dry run":
            self.dry_run_summary.setText("The dry run did not pass: see the message above.")
        self.message.show_error(message)

    def _hide_evaluation_progress(self) -> None:
        self._evaluation_job = None
        self.evaluation_row.hide()

    def _on_evaluation_progress(self, job_id: str, text: str) -> None:
        self._evaluation_status[job_id] = f"evaluating: {text}"
        if self._evaluation_job != job_id:
            self._evaluation_job, self._evaluation_started = job_id, time.monotonic()
        self.evaluation_row.show()
        counted = re.search(r"(\d+) of (\d+)", text)
        left = ""
        if counted:
            done, total = int(counted.group(1)) - 1, int(counted.group(2))
            self.evaluation_bar.setRange(0, max(total, 1))
            self.evaluation_bar.setValue(done)
            if done > 0 and " left" not in text:  # the core may say the time left itself
                seconds = (time.monotonic() - self._evaluation_started) / done * (total - done)
                left = f" · about {format_duration(seconds)} left"
        else:
            self.evaluation_bar.setRange(0, 0)  # a step of unknown length: the bar moves to and fro
        self.evaluation_label.setText(f"Evaluating {self._job_name(job_id)}: {text}{left}")
        self._schedule_refresh()

    def _on_evaluation_done(self, job_id: str, report: dict) -> None:
        from cognitivetwin_core.playground.evaluation import headline, report_lines

        self._evaluation_status.pop(job_id, None)
        self._hide_evaluation_progress()
        for line in report_lines(report):
            self.append_log(line)
        self.message.show_ok(
            f"{self._job_name(job_id)} evaluated: {headline(report)} (lower perplexity under the twin means it learned "
            "your replies; the numbers and examples are in the log below)."
        )
        self._schedule_refresh()

    def _on_adapter_ready(self, job_id: str, folder: str) -> None:
        self.message.show_ok(
            f"{self._job_name(job_id)} finished: its adapter is saved in the workspace. Phase 2 can use it now."
        )

    def _on_job_ended(self, update: JobUpdate) -> None:
        trend = self.loss_verdict(update.job_id)
        if update.job_id == self._local_plot_job and not self.loss_plot.isHidden():
            self.loss_plot.flush()
            self.loss_status.setText(
                f"{self._job_name(update.job_id)}: {update.status} after {self.plotted_steps()} plotted step(s)."
                + (f" {trend.message}" if trend is not None else "")
            )
        if update.status == "completed":
            self.notify(
                "Phase 1 job finished", f"{self._job_name(update.job_id)} completed; its adapter is in the workspace."
            )
            if update.job_id.startswith("local-"):
                text = f"{self._job_name(update.job_id)} finished: its adapter is saved in the workspace."
                if trend is not None and trend.kind in ("rising", "flat"):
                    self.message.show_info(f"{text} But: {trend.message}")
                else:
                    self.message.show_ok(text + (f" {trend.message}" if trend is not None else ""))
        elif update.status == "cancelled" and update.job_id in self.controller.cancel_requested:
            self.notify("Phase 1 job cancelled", f"{self._job_name(update.job_id)} was cancelled.")
            self.message.show_info(update.message or f"{self._job_name(update.job_id)} was cancelled.")
        else:
            self.notify(
                "Phase 1 job failed", update.message or f"{self._job_name(update.job_id)} ended {update.status}."
            )
        self.refresh_jobs()
