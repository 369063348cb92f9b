"""The Phase 2 tab: train the trajectory adapter and the style, pattern and planning heads.

- Settings: base (catalog models available offline, or a local model folder) and Phase 1
  adapter (the workspace's registered adapters, or a folder), data (the whole workspace or
  one of its sources), epochs, batch size, learning rate, gradient accumulation, plan
  steps, device (auto/cpu/cuda, with what was detected). Start, Stop & save, Cancel.
- While it runs: the phase ("encoding conversations (cache)" with its own progress, then
  the epochs), epoch/step, elapsed, ETA, RAM/VRAM, and live plots (total and per-head loss
  per step, smoothed over faint raw; validation metrics per epoch against their baselines;
  throughput). The plots redraw at 20 Hz at most (`LivePlot`).
- At the end, a summary card: did each head beat its baseline, where the model was saved.
- Runs: every Phase 2 run of the workspace (its `run.json` lineage, outcome, key metrics);
  select two to compare their per-epoch curves on the same axes; resume a stopped run.
- Closing the window during a run asks whether to stop & save (or discard); the window then
  closes itself once the training thread has ended (`confirm_close`).

Training runs in `Phase2Controller` (a worker on a QThread); this widget only reacts to the
controller's signals in the GUI thread.

The tab is put together from its parts, one module each: the settings form
(`phase2_form.py`), Start/Stop/Cancel and closing (`phase2_run_control.py`), the live page
with its plots (`phase2_live.py`), the results at a run's end (`phase2_results.py`) and the
Runs list (`phase2_runs_panel.py`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QSplitter, QTabWidget, QVBoxLayout, QWidget

from app.device_status import describe_device
from app.qt.background_job import BackgroundJob
from app.tabs.phase2_controller import Phase2Controller
from app.tabs.phase2_form import DATA_ALL, Phase2SettingsForm, count_gpus
from app.tabs.phase2_live import Phase2LivePage
from app.tabs.phase2_results import Phase2Results
from app.tabs.phase2_run_control import Phase2RunControl
from app.tabs.phase2_runs_panel import Phase2RunsPanel, read_runs  # noqa: F401 - read_runs: the tab's API
from app.widgets.message_label import MessageLabel
from cognitivetwin_core.errors import CognitiveTwinError


class Phase2Tab(Phase2SettingsForm, Phase2RunControl, Phase2LivePage, Phase2Results, QWidget):
    """Signals: `runFinished(FinishedEvent)` after the summary card is shown."""

    runFinished = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.feature_cache_dir: str | None = None  # None: <workspace>/cache/phase2-features
        self.controller = Phase2Controller(self)
        self._close_when_done = False
        self._close_question_open = False
        self._pending_selection: dict | None = None
        self._current_run_record_saved = False
        self._device_job = BackgroundJob(self, name="detect device")
        self._device_job.succeeded.connect(self._show_detected_device)
        self._gpu_count_job = BackgroundJob(self, name="count GPUs")
        self._gpu_count_job.succeeded.connect(self.show_gpu_count)
        self.gpu_count: int | None = None
        self.detected_device = ""
        self.peak_rss = 0

        self.message = MessageLabel()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_settings())
        self.pages = QTabWidget()
        self.pages.addTab(self._build_live_page(), "Live run")
        self.pages.addTab(self._build_runs_page(), "Runs")
        splitter.addWidget(self.pages)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(splitter, 1)

        c = self.controller
        c.runStarted.connect(self._on_run_started)
        c.encodingProgress.connect(self._on_encoding)
        c.stepDone.connect(self._on_step)
        c.epochDone.connect(self._on_epoch)
        c.checkpointSaved.connect(self._on_checkpoint)
        c.runFinished.connect(self._on_finished)
        c.failed.connect(self._on_failed)
        c.runningChanged.connect(self._on_running_changed)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self._set_running(False)

    # --- window hooks ----------------------------------------------------------------------------

    def set_workspace(self, workspace) -> None:
        if self.controller.is_running() and workspace is not self.workspace:
            # The window closes the previous workspace right after this call, and the run
            # writes its record there: stop & save it first (a step and a save, seconds).
            self.controller.shutdown(save=True)
            self.message.show_info(
                "The workspace changed: the Phase 2 run was stopped and saved; resume it from its Runs list."
            )
        self.workspace = workspace
        self.refresh_choices()
        self.refresh_runs()

    def set_base_model(self, name: str) -> None:
        index = self.base_combo.findData(name)
        if index >= 0 and not self.controller.is_running():
            self.base_combo.setCurrentIndex(index)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._ensure_plots()
        if self.workspace is not None and not event.spontaneous() and not self.controller.is_running():
            self.refresh_adapters()  # a Phase 1 job may have finished since: offer its adapter at once
        if not self.detected_device and not self._device_job.is_running():
            self._device_job.start(lambda _progress, _cancelled: describe_device())
        if self.gpu_count is None and not self._gpu_count_job.is_running():
            self._gpu_count_job.start(count_gpus)
        if self.memory_verdict.verdict is None and not self.memory_verdict.is_checking():
            self._base_changed()  # first shown: not at start-up, where it would load torch

    def shutdown(self) -> None:
        """The window is closing (after confirm_close): make sure the thread has ended."""
        self.controller.shutdown(save=True)
        self.base_download.shutdown()
        self.memory_verdict.shutdown()
        self._gpu_count_job.wait()

    # --- runs list ---------------------------------------------------------------------------

    def _build_runs_page(self) -> QWidget:
        self.runs_panel = Phase2RunsPanel(self.message, self.controller.is_running)
        self.runs_panel.resumeRequested.connect(self.resume_selected)
        return self.runs_panel

    def refresh_runs(self) -> None:
        self.runs_panel.refresh(self.workspace)

    def _runs_selection_changed(self) -> None:
        if hasattr(self, "runs_panel"):
            self.runs_panel.update_buttons()

    def selected_runs(self) -> list[dict]:
        return self.runs_panel.selected_runs()

    def select_runs(self, run_ids: list[str]) -> None:
        self.runs_panel.select_runs(run_ids)

    def compare_selected(self) -> bool:
        """Draw the two selected runs' per-epoch curves on the same axes."""
        return self.runs_panel.compare_selected()

    # The runs panel's parts, under the names the tab has always had.
    runs = property(lambda self: self.runs_panel.runs)
    runs_table = property(lambda self: self.runs_panel.runs_table)
    refresh_button = property(lambda self: self.runs_panel.refresh_button)
    compare_button = property(lambda self: self.runs_panel.compare_button)
    resume_button = property(lambda self: self.runs_panel.resume_button)
    lineage = property(lambda self: self.runs_panel.lineage)
    compare_loss_plot = property(lambda self: self.runs_panel.compare_loss_plot)
    compare_metric_plot = property(lambda self: self.runs_panel.compare_metric_plot)

    def resume_selected(self) -> bool:
        """Continue the selected stopped run in its folder from its last checkpoint."""
        from dataclasses import fields

        from cognitivetwin_core.phase2.config import Phase2Config

        selected = self.selected_runs()
        if len(selected) != 1 or self.controller.is_running():
            return False
        run = selected[0]
        params = dict(run.get("parameters") or {})
        known = {f.name for f in fields(Phase2Config)}
        params.update(resume=True, output_dir=run["output_dir"])
        try:
            config = Phase2Config(**{k: v for k, v in params.items() if k in known})
        except (TypeError, CognitiveTwinError) as exc:
            self.message.show_error(
                f"The run.json of {run.get('run_id')} has unusable parameters ({exc}); start a new run."
            )
            return False
        data = run.get("data") or {}
        selection = run.get("studio_data_selection")
        self.message.clear_message()
        if selection:
            return self._launch(config, selection)
        if data.get("kind") == "file" and data.get("path"):
            self._pending_selection = None
            return self.controller.start(config, data_file=data["path"])
        if data.get("kind") == "workspace":
            return self._launch(config, {"kind": DATA_ALL})
        self.message.show_error(
            f"Run {run.get('run_id')} was trained on data this tab cannot find again; resume it with the "
            "command line (cognitivetwin phase2 train --resume) and the same data."
        )
        return False
