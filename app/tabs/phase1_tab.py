"""The Phase 1 tab: LoRA fine-tuning of the base model on Together AI or on this computer.

Top: the settings (base from the catalog with its hidden size and context, marked Together
only / local only; epochs, LoRA rank, learning rate, suffix; backend), the data file, and
"Dry run", which shows the examples, tokens and Together's price estimate (or the expected
local time). "Launch…" is only enabled for a dry run of the current settings and asks for
confirmation first (`LaunchConfirmDialog.ask`): nothing costs money before that.

Below: every Phase 1 job of the workspace (status, progress, elapsed, ETA, cost, adapter),
with Cancel, "Download & register" and "Resume" (a stopped local run), the events of the
jobs in a log pane, and the loss of the local run as a live plot. Errors from the core are
shown inline in its plain words. When a job ends, a tray message says so.

All work goes through `Phase1Controller` (network calls are coroutines on the qasync loop,
the local run is a `BackgroundJob`); nothing here blocks the GUI thread.

The tab is put together from its parts, one module each: the settings form
(`phase1_form.py`), the dry run and launch (`phase1_launch.py`), the jobs table
(`phase1_jobs.py`) and the events log with the loss plot (`phase1_log_plot.py`).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QSystemTrayIcon, QVBoxLayout, QWidget

from app import settings
from app.qt.background_job import BackgroundJob
from app.qt.tasks import start_task
from app.tabs.phase1_controller import Phase1Controller
from app.tabs.phase1_form import BACKEND_SETTING, Phase1SettingsForm
from app.tabs.phase1_jobs import Phase1JobsList
from app.tabs.phase1_launch import Phase1DryRunAndLaunch
from app.tabs.phase1_log_plot import Phase1LogAndPlot
from app.widgets.message_label import MessageLabel
from cognitivetwin_core.phase1.jobs import DryRun
from cognitivetwin_core.phase1.readiness import default_choice

log = logging.getLogger(__name__)


class Phase1Tab(Phase1SettingsForm, Phase1DryRunAndLaunch, Phase1JobsList, Phase1LogAndPlot, QWidget):
    notified = Signal(str, str)  # title, text of each desktop notification
    openTabRequested = Signal(str)  # a fix lives in another tab (Connections, Data)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.plan: DryRun | None = None
        self.notifications: list[tuple[str, str]] = []
        self._tray: QSystemTrayIcon | None = None
        self._updating_form = False
        self._restoring = True  # no settings are written while the saved ones are put back
        self._local_plot_job: str | None = None
        self.has_key: bool | None = None  # the Together key: None until the keyring answered
        self._losses: dict[str, list[float]] = {}  # each job's plotted losses, for the trend verdict
        self._auto_data_path: str | None = None  # the workspace export the last dry run made
        self._evaluation_cache: dict[str, tuple[int, str]] = {}  # evaluation.json path: (mtime, headline)
        self._evaluation_status: dict[str, str] = {}  # job id: what its running evaluation is doing

        self.controller = Phase1Controller(self)
        self.export_job = BackgroundJob(self, name="Phase 1 export")

        self.message = MessageLabel()
        top = QHBoxLayout()
        top.addWidget(self._build_settings_group(), 3)
        top.addWidget(self._build_dry_run_group(), 2)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self._build_jobs_group())
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self._build_log_group())
        bottom.addWidget(self._build_plot_group())
        bottom.setSizes([500, 500])
        splitter.addWidget(bottom)
        splitter.setSizes([220, 260])

        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

        self._table_timer = QTimer(self)  # coalesces many record changes into one redraw
        self._table_timer.setSingleShot(True)
        self._table_timer.setInterval(100)
        self._table_timer.timeout.connect(self.refresh_jobs)
        self._clock = QTimer(self)  # elapsed times of running jobs tick once a second
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self.refresh_jobs)

        c = self.controller
        c.dryRunProgress.connect(self._on_upload_progress)
        c.dryRunDone.connect(self._on_dry_run_done)
        c.failed.connect(self._on_failed)
        c.busyChanged.connect(self._on_busy)
        c.logLine.connect(self.append_log)
        c.jobsChanged.connect(self._schedule_refresh)
        c.jobEnded.connect(self._on_job_ended)
        c.launched.connect(self._on_launched)
        c.lossPoint.connect(self._on_loss_point)
        c.adapterReady.connect(self._on_adapter_ready)
        c.evaluationProgress.connect(self._on_evaluation_progress)
        c.evaluationDone.connect(self._on_evaluation_done)
        c.evaluate_job.started.connect(self._update_buttons)
        c.evaluate_job.finished.connect(self._update_buttons)
        c.local_job.started.connect(self._update_buttons)
        c.local_job.finished.connect(self._update_buttons)
        self.export_job.succeeded.connect(self._on_export_done)
        self.export_job.failed.connect(lambda exc: self.message.show_error(str(exc)))
        self.export_job.finished.connect(self._update_buttons)

        self._restore_choices()
        self._on_backend_changed()
        self._restoring = False
        self._update_buttons()

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.plan = None
        self.controller.set_workspace(workspace)
        self._settings_changed()
        self.refresh_jobs()
        if workspace is not None:
            start_task(self.check_key(), name="phase 1 key check")

    def follow_together_job(self, job_id: str) -> None:
        """A Together job started elsewhere (Teach on Together, in the Playground): list and watch it."""
        if self.workspace is None:
            return
        self.controller.jobsChanged.emit()
        self.controller.watch(job_id)

    async def check_key(self) -> bool:
        """Whether a Together key is stored (off the GUI thread). Without a saved choice the
        form then starts where a job can run: Together with a key, else this computer."""
        import asyncio

        self._key_checks = getattr(self, "_key_checks", 0) + 1
        check_id = self._key_checks
        self.has_key = None  # unknown meanwhile: not blocking (the dry run reads the key itself)
        try:
            key = await asyncio.to_thread(self.controller.read_api_key)
        except Exception:  # no keyring: the Connections tab says why; here it means no key
            key = None
        if check_id != self._key_checks or self.workspace is None:
            return bool(key)  # a newer check (or a closed tab) has the say
        self.has_key = bool(key)
        if settings.read(BACKEND_SETTING) is None:
            backend, base = default_choice(self.has_key)
            self._restoring = True
            self.set_backend(backend)
            index = self.base_combo.findData(base)
            if index >= 0:
                self.base_combo.setCurrentIndex(index)
            self._restoring = False
        self._update_buttons()
        return self.has_key

    def set_base_model(self, name: str) -> None:
        """The app's chosen base: selected here when the current backend can train it."""
        index = self.base_combo.findData(name)
        if index >= 0 and self._item_enabled(index):
            self.base_combo.setCurrentIndex(index)

    def shutdown(self) -> None:
        self._clock.stop()
        self._table_timer.stop()
        self.controller.shutdown()
        self.workspace = None  # the window closes it next; nothing here may read it any more
        if self.export_job.is_running():
            self.export_job.cancel()
            self.export_job.wait()
        self.base_download.shutdown()
        self.memory_verdict.shutdown()
        if self._tray is not None:
            self._tray.hide()
