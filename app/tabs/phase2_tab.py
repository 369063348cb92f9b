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
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.device_status import describe_device
from app.qt.background_job import BackgroundJob
from app.tabs.phase2_controller import Phase2Controller
from app.tabs.phase2_runs_panel import Phase2RunsPanel, read_runs  # noqa: F401 - read_runs: the tab's API
from app.widgets.base_download import BaseDownloadRow
from app.widgets.live_plot import LivePlot
from app.widgets.memory_verdict import MemoryVerdictLabel
from app.widgets.message_label import MessageLabel
from app.widgets.run_summary_card import HEAD_COLORS, HEAD_METRICS, SummaryCard, without_run_folder
from cognitivetwin_core.durations import format_duration
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.models.catalog import CATALOG, DEFAULT_BASE_MODEL
from cognitivetwin_core.phase2.runs import new_run_dir

log = logging.getLogger(__name__)

DATA_ALL = "all"
FOLDER_ITEM = "folder"
STEP_LABELS_MS = 250  # the step labels change at most 4 times a second


ALL_GPUS = "cuda-all"  # the device choice that encodes on every GPU


def _count_gpus(_progress, _cancellation) -> int:
    # In the helper child: counting GPUs imports torch, which must not happen in this process.
    from cognitivetwin_core.child_processes import call_in_child
    from cognitivetwin_core.models.devices import cuda_device_count

    return call_in_child(cuda_device_count)


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def _default_patience() -> int:
    from cognitivetwin_core.phase2.config import Phase2Config

    return Phase2Config.__dataclass_fields__["patience"].default


def _default_learning_rate() -> float:
    """The core's default (the CLI's too); the module is light: no torch at import."""
    from cognitivetwin_core.phase2.config import Phase2Config

    return Phase2Config.__dataclass_fields__["lr"].default


def _base_label(spec) -> str:
    label = f"{spec.display_name} · hidden {spec.hidden_size}"
    return label if spec.local_available else f"{label} · not downloaded"


class Phase2Tab(QWidget):
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

    # --- building -----------------------------------------------------------------------------

    def _build_settings(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 6, 0)

        model_group = QGroupBox("Model")
        form = QFormLayout(model_group)
        self.base_combo = QComboBox()
        for spec in CATALOG.values():
            self.base_combo.addItem(_base_label(spec), spec.short_name)
        self.base_combo.addItem("A local model folder…", FOLDER_ITEM)
        self.base_combo.activated.connect(self._base_activated)
        self.adapter_combo = QComboBox()
        self.adapter_combo.activated.connect(self._adapter_activated)
        form.addRow("Base", self.base_combo)
        self.base_download = BaseDownloadRow()  # a catalog base not on disk: Download it here
        self.base_download.downloaded.connect(self._base_downloaded)
        form.addRow("", self.base_download)
        form.addRow("Phase 1 adapter", self.adapter_combo)
        column.addWidget(model_group)

        data_group = QGroupBox("Data")
        form = QFormLayout(data_group)
        self.data_combo = QComboBox()
        form.addRow("Conversations", self.data_combo)
        column.addWidget(data_group)

        hyper = QGroupBox("Training")
        form = QFormLayout(hyper)
        self.epochs_spin = self._spin(1, 1000, 10)
        # 0 shows "Automatic": the core picks by device (Phase2Config.resolve_for_device).
        self.batch_spin = self._spin(0, 512, 0)
        self.batch_spin.setSpecialValueText("Automatic")
        self.batch_spin.setToolTip(
            "Conversations per batch; all their messages go in together. Automatic: 4 on the CPU, 16 on a GPU."
        )
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(0.000001, 1.0)
        self.lr_spin.setSingleStep(0.00005)
        self.lr_spin.setValue(_default_learning_rate())
        self.accumulation_spin = self._spin(0, 256, 0)
        self.accumulation_spin.setSpecialValueText("Automatic")
        self.accumulation_spin.setToolTip(
            "Batches per weight update. Automatic: 4 on the CPU, 1 on a GPU (16 conversations an update either way)."
        )
        self.plan_spin = self._spin(1, 16, 4)
        self.plan_spin.setToolTip("How many next turns the planning head predicts.")
        self.patience_spin = self._spin(0, 1000, _default_patience())
        self.patience_spin.setSuffix(" epochs without progress")
        self.patience_spin.setSpecialValueText("never")
        self.patience_spin.setToolTip(
            "Stop early when the model has not got better on the held-out conversations for this many "
            "epochs (0: never stop early). The best epoch is kept as the model either way."
        )
        self.device_combo = QComboBox()
        for label, value in (("Auto", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda")):
            self.device_combo.addItem(label, value)
        self.device_hint = QLabel("Detecting…")
        self.device_hint.setProperty("role", "hint")
        self.device_hint.setWordWrap(True)
        form.addRow("Passes over your data", self.epochs_spin)
        form.addRow("Stop early after", self.patience_spin)
        form.addRow("Device", self.device_combo)
        form.addRow("", self.device_hint)
        # The engineer's settings, folded with their tried defaults: plain names, the exact
        # term first in each tooltip.
        from app.widgets.advanced_fold import AdvancedFold

        self.advanced = AdvancedFold()
        advanced = QFormLayout()
        self.advanced.content_layout.addLayout(advanced)
        for label, spin, term in (
            ("Conversations at once", self.batch_spin, "Batch size"),
            ("Learning speed", self.lr_spin, "Learning rate"),
            ("Batches per update", self.accumulation_spin, "Gradient accumulation"),
            ("Turns it looks ahead", self.plan_spin, "Plan steps"),
        ):
            spin.setToolTip(f"{term}. {spin.toolTip()}".strip())
            name = QLabel(label)
            name.setToolTip(spin.toolTip())
            advanced.addRow(name, spin)
        form.addRow(self.advanced.button)
        form.addRow(self.advanced)
        column.addWidget(hyper)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.stop_button = QPushButton("Stop && save")
        self.stop_button.setToolTip("Finish the current step, save a usable model, and stop (resumable).")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop now and discard this run.")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(lambda: self.stop_and_save())
        self.cancel_button.clicked.connect(lambda: self.cancel())
        for button in (self.start_button, self.stop_button, self.cancel_button):
            buttons.addWidget(button)
        column.addLayout(buttons)
        self.memory_verdict = MemoryVerdictLabel()  # will the base fit? shown before Start
        column.addWidget(self.memory_verdict)
        self.base_combo.currentIndexChanged.connect(self._base_changed)
        self.device_combo.currentIndexChanged.connect(self._check_memory)
        column.addStretch(1)
        for combo in (self.base_combo, self.adapter_combo, self.data_combo):
            # Long names (folders) must not widen the panel; the tooltip holds them whole.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(16)
            combo.currentIndexChanged.connect(lambda _i, c=combo: c.setToolTip(c.currentText()))
        self.device_hint.setMinimumWidth(1)
        # Two lines kept: a form row does not grow with its wrapped label (it was cut mid-line).
        self.device_hint.setMinimumHeight(2 * self.device_hint.fontMetrics().lineSpacing() + 2)
        scroll = QScrollArea()
        scroll.setWidget(box)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(box.sizeHint().width() + 16)
        return scroll

    @staticmethod
    def _spin(low: int, high: int, value: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        return spin

    def _build_live_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        status = QGridLayout()
        self.phase_label = QLabel("Not running.")
        self.phase_label.setStyleSheet("font-weight: bold;")
        self.phase_progress = QProgressBar()
        self.phase_progress.setRange(0, 1)
        self.phase_progress.setValue(0)
        self.position_label = QLabel("Epoch – · step –")
        self.elapsed_label = QLabel("Elapsed –")
        self.eta_label = QLabel("ETA –")
        self.memory_label = QLabel("RAM –")
        self.throughput_label = QLabel("–")
        for label in (
            self.phase_label,
            self.position_label,
            self.elapsed_label,
            self.eta_label,
            self.memory_label,
            self.throughput_label,
        ):
            # Text that changes every step must not change the layout: a new size hint would
            # re-lay out the page and repaint every plot, once per step.
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        status.addWidget(self.phase_label, 0, 0, 1, 2)
        status.addWidget(self.phase_progress, 0, 2, 1, 2)
        # Two lines of two: each text has half the width (on one line of five they were cut:
        # "90/9", "lr 1.00e-0", the ETA running into the memory).
        status.addWidget(self.position_label, 1, 0, 1, 2)
        status.addWidget(self.eta_label, 1, 2, 1, 2)
        status.addWidget(self.elapsed_label, 2, 0)
        status.addWidget(self.memory_label, 2, 1)
        status.addWidget(self.throughput_label, 2, 2, 1, 2)
        for column in range(4):
            status.setColumnStretch(column, 1)
        layout.addLayout(status)

        # The plots are built when first needed (`_ensure_plots`): importing pyqtgraph costs
        # seconds, and the window must open fast.
        self._live_plots_layout = QGridLayout()
        self._live_plots_layout.setRowStretch(0, 3)
        self._live_plots_layout.setRowStretch(1, 2)
        self._live_plots_layout.setColumnStretch(0, 3)
        self._live_plots_layout.setColumnStretch(1, 2)
        layout.addLayout(self._live_plots_layout, 1)
        self.summary = SummaryCard()
        layout.addWidget(self.summary)
        return page

    def _ensure_plots(self) -> None:
        if hasattr(self, "loss_plot"):
            return
        self.loss_plot = LivePlot("Training loss per step", x_label="step", y_label="loss")
        for head, color in HEAD_COLORS.items():
            self.loss_plot.add_series(head, color, smooth=True)
        self.loss_plot.add_series("validation total", (120, 120, 120), symbol="o", dashed=True)
        self.metrics_plot = LivePlot("Held-out scores (dashed: baselines)", x_label="epoch")
        for key, baseline_key, label, _text, color in HEAD_METRICS:
            self.metrics_plot.add_series(key, color, symbol="o", label=label.split(":")[0])
            # A symbol too: after one epoch a dashed line of one point would not show.
            # Unnamed: the title says the dashed lines are the baselines, and the legend keeps one row.
            self.metrics_plot.add_series(
                baseline_key, color, dashed=True, symbol="x", label=f"{label.split(':')[0]} baseline", in_legend=False
            )
        self.throughput_plot = LivePlot("Throughput", x_label="step", y_label="examples/s")
        self.throughput_plot.add_series("examples_per_s", (28, 126, 214), label="examples/s")
        self._live_plots_layout.addWidget(self.loss_plot, 0, 0, 1, 2)
        self._live_plots_layout.addWidget(self.metrics_plot, 1, 0)
        self._live_plots_layout.addWidget(self.throughput_plot, 1, 1)
        self.runs_panel.ensure_plots()

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
            self._device_job.start(lambda _progress, _cancellation: describe_device())
        if self.gpu_count is None and not self._gpu_count_job.is_running():
            self._gpu_count_job.start(_count_gpus)
        if self.memory_verdict.verdict is None and not self.memory_verdict.is_checking():
            self._base_changed()  # first shown: not at start-up, where it would load torch

    def show_gpu_count(self, count: int) -> None:
        """More than one GPU: offer them all (the encoding pass runs on each, docs/gpu.md)."""
        self.gpu_count = count
        index = self.device_combo.findData(ALL_GPUS)
        if count > 1 and index < 0:
            self.device_combo.addItem(f"All {count} GPUs", ALL_GPUS)
            self.device_combo.setItemData(
                self.device_combo.count() - 1,
                "Encode your conversations on every GPU at once (one process each); one GPU then trains.",
                Qt.ItemDataRole.ToolTipRole,
            )
        elif count <= 1 and index >= 0:
            self.device_combo.removeItem(index)

    def _chosen_device(self) -> tuple[str, int]:
        """(the trainer's device, how many processes encode)."""
        device = self.device_combo.currentData()
        if device == ALL_GPUS:
            return "cuda", max(2, self.gpu_count or 2)
        return device, 1

    def _show_detected_device(self, text: str) -> None:
        self.detected_device = text
        self.device_hint.setText(f"Detected: {text}")

    def confirm_close(self) -> bool:
        """The window asks before closing: True to close now. During a run the user is asked
        (without a nested event loop) to stop & save, discard, or keep training; the window
        closes itself once the training thread has ended."""
        if not self.controller.is_running():
            return True
        if not self._close_when_done and not self._close_question_open:
            self._close_question_open = True
            self.ask_close(self, self._close_answered)
        return False

    def _close_answered(self, choice: str) -> None:
        self._close_question_open = False
        if choice not in ("stop", "discard"):
            return
        if not self.controller.is_running():  # the run ended while the question was open
            QTimer.singleShot(0, self.window().close)
            return
        self._close_when_done = True
        if choice == "discard":
            self.cancel()
        else:
            self.stop_and_save()
        self.message.show_info("Finishing the Phase 2 run before the window closes…")

    @staticmethod
    def ask_close(parent: QWidget, answer) -> None:
        """Ask, then call `answer("stop" | "discard" | "keep")` (tests replace this).

        `open()`, not `exec()`: a nested event loop inside the qasync loop breaks running
        tasks (docs/qt.md §11). The box stays owned by `parent` (no deleteLater, §6)."""
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Phase 2 is training")
        box.setText("A Phase 2 run is still training. Stop it and save the model before closing?")
        box.setInformativeText("A stopped run can be resumed later from the Runs list.")
        stop = box.addButton("Stop && save", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard the run", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Keep training", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stop)

        def finished(_result: int) -> None:
            clicked = box.clickedButton()
            answer("stop" if clicked is stop else "discard" if clicked is discard else "keep")

        box.finished.connect(finished)
        box.open()

    def shutdown(self) -> None:
        """The window is closing (after confirm_close): make sure the thread has ended."""
        self.controller.shutdown(save=True)
        self.base_download.shutdown()
        self.memory_verdict.shutdown()
        self._gpu_count_job.wait()

    # --- choices ------------------------------------------------------------------------------

    def refresh_choices(self) -> None:
        self.refresh_adapters()
        self._refresh_data_choices()

    def refresh_adapters(self) -> None:
        """The Phase 1 adapters of the workspace; until the person picks one, the newest for the base."""
        current_adapter = self.adapter_combo.currentData()
        self.adapter_combo.clear()
        self.adapter_combo.addItem("None (the base alone)", None)
        if self.workspace is not None:
            from cognitivetwin_core.phase1.job_names import adapter_name

            for record in self.workspace.adapters():
                # Named as its Phase 1 job is (never its hex id); the id in the tooltip.
                self.adapter_combo.addItem(adapter_name(record), record["path"])
                self.adapter_combo.setItemData(
                    self.adapter_combo.count() - 1, f"Adapter {record['adapter_id']}", Qt.ItemDataRole.ToolTipRole
                )
        self.adapter_combo.addItem("An adapter folder…", FOLDER_ITEM)
        index = self.adapter_combo.findData(current_adapter)
        if current_adapter is None and not getattr(self, "_adapter_chosen", False):
            index = self._newest_adapter_for_base()  # the guided path: Phase 2 learns on your Phase 1 voice
        self.adapter_combo.setCurrentIndex(max(index, 0))

    def _refresh_data_choices(self) -> None:
        self.data_combo.clear()
        if self.workspace is None:
            self.data_combo.addItem("No workspace open", None)
            return
        total = self.workspace.count_conversations()
        self.data_combo.addItem(f"The whole workspace ({total} conversations)", {"kind": DATA_ALL})
        for source in self.workspace.sources():
            count = self.workspace.count_conversations(source=source)
            self.data_combo.addItem(f"Source “{source}” ({count} conversations)", {"kind": "source", "source": source})

    def _base_changed(self, *_args) -> None:
        self.base_download.set_base(self.base_combo.currentData())
        self._check_memory()

    def _base_downloaded(self, name: str) -> None:
        index = self.base_combo.findData(name)
        if index >= 0:
            self.base_combo.setItemText(index, _base_label(CATALOG[name]))
        self._check_memory()

    def _check_memory(self, *_args) -> None:
        """The encoding pass's memory verdict for this base and device (off the GUI thread)."""
        from cognitivetwin_core.phase2.memory_check import encode_memory_verdict

        base = self.base_combo.currentData()
        if base in (None, FOLDER_ITEM):
            self.memory_verdict.clear_message()
            return
        # All GPUs: each holds a copy of the base, so one GPU's memory is what must suffice.
        self.memory_verdict.check(encode_memory_verdict, base, device=self._chosen_device()[0])

    def _base_activated(self, _index: int) -> None:
        if self.base_combo.currentData() == FOLDER_ITEM:
            folder = QFileDialog.getExistingDirectory(self, "A Hugging Face model folder (config.json and safetensors)")
            if folder:
                self.choose_base_folder(folder)
            else:
                self.base_combo.setCurrentIndex(0)

    def choose_base_folder(self, folder: str | Path) -> None:
        folder = str(Path(folder).resolve())
        index = self.base_combo.findData(folder)
        if index < 0:
            self.base_combo.insertItem(self.base_combo.count() - 1, f"Folder: {folder}", folder)
            index = self.base_combo.findData(folder)
        self.base_combo.setCurrentIndex(index)

    def _newest_adapter_for_base(self) -> int:
        """The combo index of the workspace's newest adapter trained on the chosen base, or -1."""
        base = str(self.base_combo.currentData() or "")
        for record in reversed(self.workspace.adapters() if self.workspace is not None else []):
            lineage = record.get("lineage") or {}
            if base and str(lineage.get("base_model") or lineage.get("base") or "") == base:
                return self.adapter_combo.findData(record["path"])
        return -1

    def _adapter_activated(self, _index: int) -> None:
        self._adapter_chosen = True  # the person's choice (None included) wins from now on
        if self.adapter_combo.currentData() == FOLDER_ITEM:
            folder = QFileDialog.getExistingDirectory(self, "A Phase 1 LoRA adapter folder")
            if folder:
                self.choose_adapter_folder(folder)
            else:
                self.adapter_combo.setCurrentIndex(0)

    def choose_adapter_folder(self, folder: str | Path) -> None:
        folder = str(Path(folder).resolve())
        index = self.adapter_combo.findData(folder)
        if index < 0:
            self.adapter_combo.insertItem(self.adapter_combo.count() - 1, f"Folder: {folder}", folder)
            index = self.adapter_combo.findData(folder)
        self.adapter_combo.setCurrentIndex(index)

    # --- starting and stopping ------------------------------------------------------------------

    def build_config(self):
        from cognitivetwin_core.phase2.config import Phase2Config

        base = self.base_combo.currentData() or DEFAULT_BASE_MODEL
        adapter = self.adapter_combo.currentData()
        return Phase2Config(
            base_model=base,
            adapter_dir=adapter if adapter not in (None, FOLDER_ITEM) else None,
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value() or None,
            lr=self.lr_spin.value(),
            gradient_accumulation=self.accumulation_spin.value() or None,
            device=self._chosen_device()[0],
            plan_steps=self.plan_spin.value(),
            patience=self.patience_spin.value(),
            cache_dir=self._cache_dir(),
        )

    def _cache_dir(self) -> str | None:
        if self.feature_cache_dir:
            return str(self.feature_cache_dir)
        return str(self.workspace.cache_dir / "phase2-features") if self.workspace is not None else None

    def start(self) -> bool:
        """Start a run with the settings shown; False (with a message) when it cannot."""
        if self.controller.is_running():
            return False
        if self.workspace is None:
            self.message.show_error("Open a workspace first (File ▸ Open workspace…).")
            return False
        if self.memory_verdict.fits is False:  # the base would not fit: say so rather than be killed
            self.message.show_error(self.memory_verdict.verdict.text)
            return False
        selection = self.data_combo.currentData() or {"kind": DATA_ALL}
        try:
            config = self.build_config()
        except CognitiveTwinError as exc:  # settings the form allows but a run refuses
            self.message.show_error(str(exc))
            return False
        return self._launch(config, selection)

    def _launch(self, config, selection: dict) -> bool:
        """Start `config` on the open workspace: all of it, or one source (the child reads the
        conversations; this thread never does)."""
        self.message.clear_message()
        processes = self._chosen_device()[1] if config.device == "cuda" else 1
        self._run_workspace = self.workspace
        if selection.get("kind") == "source":
            config = replace(
                config,
                source=selection["source"],
                output_dir=config.output_dir or str(self._new_output_dir()),
            )
            self._pending_selection = selection
        else:
            self._pending_selection = None
        return self.controller.start(config, workspace=self.workspace, processes=processes)

    def _new_output_dir(self) -> Path:
        return new_run_dir(self.workspace.runs_dir)

    def stop_and_save(self) -> None:
        if self.controller.is_running():
            self.controller.request_stop(save=True)
            self.phase_label.setText("Stopping: finishing the step and saving…")
            self.stop_button.setEnabled(False)
            self.cancel_button.setEnabled(False)

    def cancel(self) -> None:
        if self.controller.is_running():
            self.controller.request_cancel()
            self.phase_label.setText("Cancelling: discarding the run…")
            self.stop_button.setEnabled(False)
            self.cancel_button.setEnabled(False)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        for widget in (
            self.base_combo,
            self.adapter_combo,
            self.data_combo,
            self.epochs_spin,
            self.batch_spin,
            self.lr_spin,
            self.accumulation_spin,
            self.plan_spin,
            self.patience_spin,
            self.device_combo,
        ):
            widget.setEnabled(not running)
        self._runs_selection_changed()

    # --- controller signals (GUI thread) --------------------------------------------------------

    def _on_run_started(self, trainer) -> None:
        self._forget_steps()
        self._ensure_plots()
        for plot in (self.loss_plot, self.metrics_plot, self.throughput_plot):
            for name in plot.series_names():
                plot.set_points(name, [], [])
            plot.flush()
        self.summary.hide()
        if trainer is not None and trainer.config.resume and trainer.config.output_dir:
            self._show_earlier_epochs(Path(trainer.config.output_dir))
        self._selection_recorded = False
        self.peak_rss = 0
        self.phase_label.setText(
            "Loading the base model and reading your messages (the first update can take a while)…"
        )
        self.phase_progress.setRange(0, 0)  # busy until the first event
        self._eta = None
        # The previous run's numbers must not pass for this one's while it loads.
        self.throughput_label.setText("–")
        self.elapsed_label.setText("Elapsed 0:00")
        self.position_label.setText("Epoch – · step –")
        self.eta_label.setText("ETA –")
        self.pages.setCurrentIndex(0)
        self._tick()
        self._clock.start()

    def _show_earlier_epochs(self, run_dir: Path) -> None:
        """A resumed run: draw the epochs it already trained (from its metrics.json), so the
        plots continue its history instead of starting again."""
        from cognitivetwin_core.phase2.runs import METRICS_FILE, read_json

        for entry in (read_json(run_dir / METRICS_FILE) or {}).get("epochs") or []:
            epoch = entry.get("epoch")
            if epoch is None:
                continue
            metrics = entry.get("metrics") or {}
            for key, baseline_key, *_ in HEAD_METRICS:
                self.metrics_plot.append(key, epoch, metrics.get(key))
                self.metrics_plot.append(baseline_key, epoch, metrics.get(baseline_key))
            step = entry.get("global_step")  # absent in runs saved before it was recorded
            if step is not None:
                self.loss_plot.append("validation total", step, (entry.get("validation") or {}).get("total"))
                self.loss_plot.append("total", step, (entry.get("train") or {}).get("total"))
                self._last_global_step = step
        for plot in (self.loss_plot, self.metrics_plot):
            plot.flush()

    def _record_selection(self) -> None:
        """A run on one source: remember which, so the Runs list can resume it."""
        if self._selection_recorded:
            return
        trainer = self.controller.trainer
        if trainer is None or trainer.run_id is None:
            return
        self._selection_recorded = True
        if self._pending_selection is not None:
            self._record_in_run_workspace(
                trainer.run_id,
                {"studio_data_selection": self._pending_selection, "output_dir": str(trainer.output_dir)},
            )

    def _record_in_run_workspace(self, run_id: str, fields: dict) -> None:
        workspace = getattr(self, "_run_workspace", None)
        if workspace is None:
            return
        try:
            workspace.upsert_phase2_run(run_id, fields)
        except Exception:  # the window may have closed that workspace since; run.json has it all
            log.warning("could not record Phase 2 run %s in %s", run_id, workspace.path, exc_info=True)

    def _on_encoding(self, event) -> None:
        self._record_selection()
        if event.cache_hit:
            self.phase_label.setText("Encoding conversations (cache): found in the feature cache")
        else:
            self.phase_label.setText(
                f"Encoding conversations (cache): {event.done}/{event.total} messages, {event.tokens_per_s:.0f} tokens/s"
            )
        self.phase_progress.setRange(0, max(event.total, 1))
        self.phase_progress.setValue(event.done)
        self._set_eta(event.eta_s, " (encoding)")

    def _on_step(self, event) -> None:
        self._record_selection()
        for head, value in event.losses.items():
            if self.loss_plot.has_series(head):
                self.loss_plot.append(head, event.global_step, value)
        self.throughput_plot.append("examples_per_s", event.global_step, event.examples_per_s)
        self._last_global_step = event.global_step
        # New label texts re-lay out the whole tab (~10 ms here): at most STEP_LABELS_MS apart,
        # the first at once, the latest when the interval ends (docs/gui-responsiveness.md).
        self._latest_step = event
        timer = getattr(self, "_step_labels_timer", None)
        if timer is None:
            timer = self._step_labels_timer = QTimer(self)
            timer.setSingleShot(True)
            timer.setInterval(STEP_LABELS_MS)
            timer.timeout.connect(self._show_latest_step)
        if not timer.isActive():
            self._show_step(event)
            timer.start()

    def _show_latest_step(self) -> None:
        if self._latest_step is not None and self._latest_step is not self._shown_step:
            self._show_step(self._latest_step)
            self._step_labels_timer.start()

    def _show_step(self, event) -> None:
        self._shown_step = event
        self.phase_label.setText(f"Training: epoch {event.epoch} of {event.epochs}")
        self.phase_progress.setRange(0, max(event.total_steps, 1))
        self.phase_progress.setValue(event.global_step)
        self.position_label.setText(
            f"Epoch {event.epoch}/{event.epochs} · step {event.step}/{event.steps_per_epoch} · {event.global_step}/{event.total_steps} total"
        )
        self._set_eta(event.eta_s, "")
        self.throughput_label.setText(f"{event.examples_per_s:.1f} examples/s")
        self.throughput_label.setToolTip(f"Learning rate now: {event.lr:.2e}")

    def _forget_steps(self) -> None:
        """No step label update may land after the run's end (or in the next run)."""
        self._latest_step = self._shown_step = None
        timer = getattr(self, "_step_labels_timer", None)
        if timer is not None:
            timer.stop()

    def _on_epoch(self, event) -> None:
        step = getattr(self, "_last_global_step", event.epoch)
        self.loss_plot.append("validation total", step, event.val_losses.get("total"))
        for key, baseline_key, *_ in HEAD_METRICS:
            self.metrics_plot.append(key, event.epoch, event.metrics.get(key))
            self.metrics_plot.append(baseline_key, event.epoch, event.metrics.get(baseline_key))

    def _on_checkpoint(self, event) -> None:
        self.phase_label.setText(f"Training: epoch {event.epoch} saved (checkpoint)")

    def _on_finished(self, finished) -> None:
        self._forget_steps()
        self._clock.stop()
        self._tick()
        self._eta = None
        self.eta_label.setText("ETA –")
        self._ensure_plots()
        # Not flush(): the redraw queue draws the three plots on successive ticks, not at once.
        for plot in (self.loss_plot, self.metrics_plot, self.throughput_plot):
            plot.request_redraw()
        trainer = self.controller.trainer
        if trainer is not None and trainer.run_id and self._pending_selection is not None:
            # The core records only workspace-wide runs in the workspace; record this one too.
            self._record_in_run_workspace(
                trainer.run_id, {**trainer.run_record, "studio_data_selection": self._pending_selection}
            )
        self.phase_label.setText(f"Finished: {finished.outcome}")
        self.phase_progress.setRange(0, 1)
        self.phase_progress.setValue(1 if finished.outcome == "completed" else 0)
        self.eta_label.setText("ETA –")
        self.refresh_runs()  # now: the window may close this workspace once the run has ended
        # The summary card and the message change the layout, and showing a widget lays out
        # its parents at once, plots included: both are shown under one layout pass, on the
        # next turn of the event loop. The resized plots then repaint one per turn (three at
        # once took 60-100 ms), and `runFinished` comes last, with everything shown
        # (docs/gui-responsiveness.md).
        later = (self.metrics_plot, self.throughput_plot)
        self._in_turns(
            lambda: self._show_result(finished, repaint_later=later),
            *(lambda plot=plot: plot.setUpdatesEnabled(True) for plot in later),
            lambda: self.runFinished.emit(finished),
        )

    def _show_result(self, finished, repaint_later=()) -> None:
        for plot in repaint_later:
            plot.setUpdatesEnabled(False)
        layouts = [self.layout(), self.summary.parentWidget().layout()]
        for layout in layouts:
            layout.setEnabled(False)
        try:
            self.summary.show_result(finished)
            self._show_outcome(finished)
        finally:
            for layout in reversed(layouts):
                layout.setEnabled(True)
            self.layout().activate()

    def _in_turns(self, *steps) -> None:
        if steps:
            QTimer.singleShot(0, self, lambda: (steps[0](), self._in_turns(*steps[1:])))

    def _show_outcome(self, finished) -> None:
        text = without_run_folder(finished.message, finished.output_dir)
        if finished.outcome == "failed":
            self.message.show_error(text)
        elif finished.outcome in ("completed", "stopped"):
            self.message.show_ok(text)
        else:
            self.message.show_info(text)
        self.message.setToolTip(f"Its folder: {finished.output_dir}" if finished.output_dir else "")

    def _on_failed(self, message: str) -> None:
        self._forget_steps()
        self._clock.stop()
        self.phase_label.setText("Not running.")
        self.phase_progress.setRange(0, 1)
        self.phase_progress.setValue(0)
        self.message.show_error(message)
        self.refresh_runs()

    def _on_running_changed(self, running: bool) -> None:
        self._set_running(running)
        if not running and self._close_when_done:
            self._close_when_done = False
            window = self.window()
            if window is not self:
                QTimer.singleShot(0, window.close)

    def _set_eta(self, eta_s, suffix: str) -> None:
        """Remember the ETA with its time, so the clock counts it down between the core's events
        (a batch of the encoder can take many seconds: the display must not stand still)."""
        self._eta = (time.monotonic(), eta_s, suffix) if eta_s is not None else None
        self.eta_label.setText(f"ETA {format_duration(eta_s, clock=True)}{suffix}" if eta_s is not None else "ETA –")

    def _count_down_eta(self) -> None:
        eta = getattr(self, "_eta", None)
        if eta is None:
            return
        since, eta_s, suffix = eta
        waited = time.monotonic() - since
        left = max(0.0, eta_s - waited)
        text = f"ETA {format_duration(left, clock=True)}{suffix}"
        if waited >= 5:
            text += f" · working, last update {format_duration(waited)} ago"
        self.eta_label.setText(text)

    def _tick(self) -> None:
        """Once a second while running: elapsed time, memory and the ETA counting down."""
        import psutil

        if self.controller.is_running():
            self._count_down_eta()

        self.elapsed_label.setText(f"Elapsed {format_duration(self.controller.elapsed_s(), clock=True)}")
        rss = psutil.Process().memory_info().rss
        pid = self.controller.worker_pid()
        if pid is not None:  # the training runs in its own process: its memory counts too
            try:
                rss += psutil.Process(pid).memory_info().rss
            except psutil.Error:  # it has just ended
                pass
        self.peak_rss = max(self.peak_rss, rss)
        text = f"RAM {_gib(rss)}"
        step = getattr(self, "_latest_step", None)
        if step is not None and getattr(step, "device_memory", None):
            # The training child's own figure: this process has no torch (docs/gui-responsiveness.md).
            allocated, peak = step.device_memory
            text += f" · VRAM {_gib(allocated)} (peak {_gib(peak)})"
        self.memory_label.setText(text)

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
