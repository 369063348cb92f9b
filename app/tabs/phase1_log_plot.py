"""The Phase 1 tab's events log, the live loss plot of a local run, and desktop notifications.

A part of `Phase1Tab` (app/tabs/phase1_tab.py), mixed into it: the widgets and state are
the tab's attributes."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QGroupBox, QLabel, QPlainTextEdit, QSystemTrayIcon, QVBoxLayout

LOG_LINES_KEPT = 5000
LOSS_SERIES = "loss"


class Phase1LogAndPlot:
    def _build_log_group(self) -> QGroupBox:
        group = QGroupBox("Events")
        box = QVBoxLayout(group)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(LOG_LINES_KEPT)
        self.log_view.setPlaceholderText("The events of the jobs appear here as they happen.")
        box.addWidget(self.log_view)
        return group

    def _build_plot_group(self) -> QGroupBox:
        group = QGroupBox("Local run: training loss")
        self.plot_box = QVBoxLayout(group)
        # Built with the tab (tabs are built on first show, so pyqtgraph stays out of start-up) and
        # shown with the first local run: imported at the first loss point, pyqtgraph stalled the
        # window for about 300 ms mid-run (benchmarks/gui_responsiveness.py --run local-lora).
        from app.widgets.live_plot import LivePlot  # the Phase 2 tab's throttled plot

        self.loss_plot = LivePlot(x_label="step", y_label="loss (on your replies)")
        self.loss_plot.setVisible(False)
        self.plot_box.addWidget(self.loss_plot, 1)
        self.loss_status = QLabel(
            "No run on this computer yet: its loss (how wrong it still is) is drawn here as it trains."
        )
        self.loss_status.setProperty("role", "hint")
        self.loss_status.setWordWrap(True)
        self.plot_box.addWidget(self.loss_status)
        return group

    def _reset_plot(self) -> None:
        self.loss_plot.setVisible(True)
        self.loss_plot.clear()
        self.loss_plot.add_series(LOSS_SERIES, (33, 60, 170), smooth=True, label="training loss")

    def plotted_steps(self) -> int:
        return self.loss_plot.point_count(LOSS_SERIES)

    def _on_loss_point(self, job_id: str, step: int, loss: float) -> None:
        if self._local_plot_job is None:
            self._local_plot_job = job_id
        if job_id != self._local_plot_job:
            return
        if self.loss_plot.isHidden():
            self._reset_plot()
        self._losses.setdefault(job_id, []).append(loss)
        self.loss_plot.append(LOSS_SERIES, step, loss)
        update = self.controller.live_update(job_id)
        total = f"/{update.total_steps}" if update is not None and update.total_steps else ""
        self.loss_status.setText(f"{self._job_name(job_id)}: step {step}{total}, loss {loss:.4f}")

    def loss_verdict(self, job_id: str):
        """Falling, flat or rising, in words (`training_verdicts.loss_trend`); None without a curve."""
        from cognitivetwin_core.training_verdicts import MIN_STEPS_FOR_A_TREND, LossTrend, loss_trend

        losses = self._losses.get(job_id) or []
        if not losses:
            return None
        if len(losses) < MIN_STEPS_FOR_A_TREND:  # a few steps' losses are noise, not a trend
            return LossTrend(
                "unknown",
                losses[0],
                losses[-1],
                f"Only {len(losses)} step(s): too few to tell whether the model learned your voice; "
                "a real run needs more steps (leave “Stop early after” at “no limit” under Advanced settings).",
            )
        return loss_trend(losses)

    def append_log(self, line: str) -> None:
        # The core's lines name jobs by id: a person reads the job's name.
        for job_id, name in getattr(self, "_job_names", {}).items():
            line = line.replace(job_id, name)
        self.log_view.appendPlainText(line)

    def notify(self, title: str, text: str) -> None:
        """A desktop notification (system tray message) where the desktop has a tray."""
        self.notifications.append((title, text))
        if QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
            if self._tray is None:
                self._tray = QSystemTrayIcon(QApplication.windowIcon(), self)
                self._tray.setToolTip("CognitiveTwin Studio")
            self._tray.show()
            self._tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 10_000)
        self.notified.emit(title, text)

    def _show_last_local_run(self, records) -> None:
        """Before any run of this session: what the last finished local run learned, and its
        curve, from its adapter's lineage (runs from before the curve was kept: the words only)."""
        if self._local_plot_job is not None or not self.loss_plot.isHidden():
            return
        from cognitivetwin_core.phase1.adapter_archive import read_lineage, read_loss_curve

        for record in records:  # newest first
            if record.backend != "local" or record.status != "completed" or not record.adapter_path:
                continue
            if getattr(self, "_last_run_shown", None) == record.job_id:
                return  # said already (refreshes come every second while a job runs)
            self._last_run_shown = record.job_id
            try:
                lineage = read_lineage(record.adapter_path) or {}
            except (OSError, ValueError):
                lineage = {}
            first, last, steps = lineage.get("first_loss"), lineage.get("last_loss"), lineage.get("steps")
            curve = read_loss_curve(lineage)
            if curve:
                self._reset_plot()
                for step, loss in curve:
                    self.loss_plot.append(LOSS_SERIES, step, loss)
            if isinstance(first, (int, float)) and isinstance(last, (int, float)):
                self.loss_status.setText(
                    f"The last run on this computer, {self._job_name(record.job_id)}, finished: its loss "
                    f"(how wrong it still is) went from {first:.3f} to {last:.3f} over {steps} steps. "
                    + ("" if curve else "The curve of a run is drawn here while it trains.")
                )
            else:
                self.loss_status.setText(
                    f"The last run on this computer, {self._job_name(record.job_id)}, finished. "
                    "The curve of a run is drawn here while it trains."
                )
            return
