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
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDoubleValidator, QRegularExpressionValidator, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QSystemTrayIcon,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import settings
from app.dialogs.phase1_confirm import LaunchConfirmDialog
from app.qt.background_job import BackgroundJob
from app.qt.tasks import start_task
from app.tabs.phase1_controller import Phase1Controller, parse_time
from app.tabs.phase1_report_button import ReportButton
from app.widgets.base_download import BaseDownloadRow
from app.widgets.device_picker import DevicePicker
from app.widgets.memory_verdict import MemoryVerdictLabel
from app.widgets.message_label import MessageLabel
from cognitivetwin_core.durations import format_duration
from cognitivetwin_core.models.catalog import CATALOG, DEFAULT_BASE_MODEL, DEFAULT_TOGETHER_BASE_MODEL
from cognitivetwin_core.phase1.jobs import DryRun, JobRecord, JobUpdate, Phase1Settings, is_terminal, read_job
from cognitivetwin_core.phase1.readiness import (
    FIX_ADD_KEY,
    FIX_CHOOSE_FILE,
    FIX_IMPORT_DATA,
    FIX_USE_BUILTIN,
    LaunchCheck,
    base_on_disk,
    default_choice,
    launch_check,
)

log = logging.getLogger(__name__)

COLUMNS = ("Job", "Backend", "Base", "Status", "Progress", "Elapsed", "ETA", "Cost", "Adapter", "Evaluation")
DATA_PATH_SETTING = "phase1/data_path"
# The form's choices, remembered across restarts (never the key: it lives in the keyring).
BACKEND_SETTING = "phase1/backend"
BASE_SETTING = "phase1/base"
EPOCHS_SETTING = "phase1/epochs"
RANK_SETTING = "phase1/lora_rank"
LEARNING_RATE_SETTING = "phase1/learning_rate"
SUFFIX_SETTING = "phase1/suffix"
MAX_STEPS_SETTING = "phase1/max_steps"
SUFFIX_PATTERN = r"[a-z0-9][a-z0-9-]{0,39}"
LOG_LINES_KEPT = 5000
LOSS_SERIES = "loss"


def base_model_label(short_name: str) -> str:
    spec = CATALOG[short_name]
    if not spec.together_available:
        where = "local only"
    elif spec.local_available:
        where = "Together or local"
    else:
        where = "Together only (local needs its weights downloaded)"
    return f"{spec.display_name} · hidden {spec.hidden_size}, context {spec.context_length // 1024}k · {where}"


class Phase1Tab(QWidget):
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

    # --- building -------------------------------------------------------------------------

    def _build_settings_group(self) -> QGroupBox:
        group = QGroupBox("Phase 1: fine-tune the base model (LoRA)")
        form = QFormLayout(group)

        backend_row = QVBoxLayout()
        self.local_radio = QRadioButton("This computer: free and private, slower (minutes with the built-in model)")
        self.together_radio = QRadioButton("Together AI: paid cloud (about $1–10 a run), fast, needs a key")
        self.backend_group = QButtonGroup(self)
        self.backend_group.addButton(self.local_radio)
        self.backend_group.addButton(self.together_radio)
        self.local_radio.setChecked(True)  # works everywhere; Together once a key is there
        self.together_radio.toggled.connect(self._on_backend_changed)
        backend_row.addWidget(self.local_radio)
        backend_row.addWidget(self.together_radio)
        form.addRow("Where to train", backend_row)

        base_row = QHBoxLayout()
        self.base_combo = QComboBox()
        self.base_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.base_combo.setMinimumContentsLength(30)
        for name in CATALOG:
            self.base_combo.addItem(base_model_label(name), name)
            self.base_combo.setItemData(
                self.base_combo.count() - 1, base_model_label(name), Qt.ItemDataRole.ToolTipRole
            )
        self.base_folder_button = QPushButton("Model folder…")
        self.base_folder_button.setToolTip("Train locally on any Hugging Face model folder (with config.json).")
        self.base_folder_button.clicked.connect(self._choose_base_folder)
        base_row.addWidget(self.base_combo, 1)
        base_row.addWidget(self.base_folder_button)
        form.addRow("Base model", base_row)
        self.base_info = QLabel()
        self.base_info.setProperty("role", "hint")
        self.base_info.setWordWrap(True)
        form.addRow("", self.base_info)
        self.base_download = BaseDownloadRow()
        self.base_download.downloaded.connect(self._on_base_downloaded)
        form.addRow("", self.base_download)
        self.device_picker = DevicePicker()
        self.device_label = QLabel("Device")
        form.addRow(self.device_label, self.device_picker)

        data_row = QHBoxLayout()
        saved_path = str(settings.read(DATA_PATH_SETTING, "") or "")
        self.data_path = QLineEdit(saved_path if saved_path and Path(saved_path).is_file() else "")
        self.data_path.setPlaceholderText("Empty: your workspace's conversations (prepared automatically)")
        self.data_path.setToolTip(
            "Leave empty to train on the conversations in your workspace. "
            'Or choose a chat JSONL file (one {"messages": [...]} per line).'
        )
        self.data_browse = QPushButton("Browse…")
        self.data_browse.clicked.connect(self._choose_data_file)
        self.data_export = QPushButton("Export from workspace")
        self.data_export.setToolTip("Write the workspace's conversations as Phase 1 JSONL for this base, then use it.")
        self.data_export.clicked.connect(self.export_workspace_data)
        data_row.addWidget(self.data_path, 1)
        data_row.addWidget(self.data_browse)
        data_row.addWidget(self.data_export)
        form.addRow("Data", data_row)

        numbers = QHBoxLayout()
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 20)
        self.epochs.setValue(3)
        self.lora_rank = QSpinBox()
        self.lora_rank.setRange(1, 256)
        self.lora_rank.setValue(16)
        self.lora_rank.setToolTip("LoRA rank r; alpha is set to 2 x r.")
        self.learning_rate = QLineEdit()
        self.learning_rate.setValidator(QDoubleValidator(1e-8, 1.0, 10))
        self.learning_rate.setPlaceholderText("default")
        self.learning_rate.setToolTip("Empty: the tried default for where it trains (best left empty).")
        self.learning_rate.setMaximumWidth(110)
        for label, widget in (
            ("Epochs", self.epochs),
            ("LoRA rank", self.lora_rank),
            ("Learning rate", self.learning_rate),
        ):
            numbers.addWidget(QLabel(label))
            numbers.addWidget(widget)
        numbers.addStretch(1)
        form.addRow("Training", numbers)

        extra = QHBoxLayout()
        self.suffix = QLineEdit()
        self.suffix.setPlaceholderText("e.g. my-twin")
        self.suffix.setMaxLength(40)
        self.suffix.setValidator(QRegularExpressionValidator(SUFFIX_PATTERN))
        self.suffix.setToolTip("Lower-case letters, digits and dashes; part of the Together model's name.")
        self.max_steps_label = QLabel("Stop after steps")
        self.max_steps = QSpinBox()
        self.max_steps.setRange(0, 1_000_000)
        self.max_steps.setSpecialValueText("all")
        self.max_steps.setToolTip("Local only: stop early for a quick try (all = every epoch).")
        extra.addWidget(self.suffix, 1)
        extra.addWidget(self.max_steps_label)
        extra.addWidget(self.max_steps)
        form.addRow("Suffix", extra)

        for widget in (self.epochs, self.lora_rank, self.max_steps):
            widget.valueChanged.connect(self._settings_changed)
        for widget in (self.learning_rate, self.suffix, self.data_path):
            widget.textChanged.connect(self._settings_changed)
        self.base_combo.currentIndexChanged.connect(self._on_base_changed)
        self.device_picker.currentIndexChanged.connect(self._on_device_changed)
        self.lora_rank.valueChanged.connect(self._check_memory)
        return group

    def _build_dry_run_group(self) -> QGroupBox:
        group = QGroupBox("Dry run, then launch")
        box = QVBoxLayout(group)
        self.dry_run_summary = QLabel(
            "First a dry run: it checks your data and says how long (this computer) or how much "
            "(Together AI) training takes. Nothing starts and nothing is paid before you launch."
        )
        self.dry_run_summary.setWordWrap(True)
        self.dry_run_summary.setTextFormat(Qt.TextFormat.PlainText)
        self.dry_run_summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dry_run_summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.upload_progress = QProgressBar()
        self.upload_progress.setFormat("uploading %p%")
        self.upload_progress.hide()
        buttons = QHBoxLayout()
        self.dry_run_button = QPushButton("Dry run")
        self.dry_run_button.setToolTip(
            "Check the data and settings; on Together also upload the file and get the price. Costs nothing."
        )
        self.launch_button = QPushButton("Launch…")
        self.launch_button.setToolTip("Start the job described by the dry run (asks for confirmation first).")
        self.dry_run_button.clicked.connect(lambda: start_task(self.dry_run(), name="phase 1 dry run"))
        self.launch_button.clicked.connect(lambda: start_task(self.launch(), name="phase 1 launch"))
        buttons.addWidget(self.dry_run_button)
        buttons.addWidget(self.launch_button)
        buttons.addStretch(1)
        # Why Launch cannot be pressed, and the one fix, right beside it.
        self.launch_reason = QLabel()
        self.launch_reason.setObjectName("launchReason")
        self.launch_reason.setWordWrap(True)
        self.launch_reason.setProperty("role", "message-info")
        self.launch_reason.hide()
        self.fix_button = QPushButton()
        self.fix_button.hide()
        self.fix_button.clicked.connect(self._apply_fix)
        reason_row = QHBoxLayout()
        reason_row.addWidget(self.launch_reason, 1)
        reason_row.addWidget(self.fix_button, 0, Qt.AlignmentFlag.AlignTop)
        box.addWidget(self.dry_run_summary, 1)
        # Local runs: will the base fit on the chosen device? Shown before Launch.
        self.memory_verdict = MemoryVerdictLabel()
        box.addWidget(self.memory_verdict)
        box.addWidget(self.upload_progress)
        box.addLayout(reason_row)
        box.addLayout(buttons)
        return group

    def _build_jobs_group(self) -> QGroupBox:
        group = QGroupBox("Jobs of this workspace")
        box = QVBoxLayout(group)
        self.jobs_table = QTableWidget(0, len(COLUMNS))
        self.jobs_table.setHorizontalHeaderLabels(COLUMNS)
        self.jobs_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.jobs_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.jobs_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.jobs_table.verticalHeader().hide()
        header = self.jobs_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.jobs_table.itemSelectionChanged.connect(self._update_buttons)
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
        return group

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
        self.loss_plot = None  # built with the first local run: pyqtgraph stays out of start-up
        self.loss_status = QLabel(
            "No run on this computer yet: its loss (how wrong it still is) is drawn here as it trains."
        )
        self.loss_status.setProperty("role", "hint")
        self.loss_status.setWordWrap(True)
        self.plot_box.addWidget(self.loss_status)
        return group

    def _reset_plot(self) -> None:
        if self.loss_plot is None:
            from app.widgets.live_plot import LivePlot  # the Phase 2 tab's throttled plot

            self.loss_plot = LivePlot(x_label="step", y_label="loss (assistant tokens)")
            self.plot_box.insertWidget(0, self.loss_plot, 1)
        self.loss_plot.clear()
        self.loss_plot.add_series(LOSS_SERIES, (33, 60, 170), smooth=True, label="training loss")

    def plotted_steps(self) -> int:
        return self.loss_plot.point_count(LOSS_SERIES) if self.loss_plot is not None else 0

    # --- the main window's hooks -------------------------------------------------------------

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.plan = None
        self.controller.set_workspace(workspace)
        self._settings_changed()
        self.refresh_jobs()
        if workspace is not None:
            start_task(self.check_key(), name="phase 1 key check")

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

    # --- form -----------------------------------------------------------------------------

    def backend_name(self) -> str:
        return "together" if self.together_radio.isChecked() else "local"

    def set_backend(self, name: str) -> None:
        (self.together_radio if name == "together" else self.local_radio).setChecked(True)

    def _item_enabled(self, index: int) -> bool:
        model = self.base_combo.model()
        return bool(isinstance(model, QStandardItemModel) and model.item(index).isEnabled())

    def _on_backend_changed(self, *_args) -> None:
        together = self.backend_name() == "together"
        if not self._restoring:  # the person's own choice: it wins over the default from then on
            settings.write(BACKEND_SETTING, self.backend_name())
            if together and self.workspace is not None:  # a key may have been added meanwhile
                start_task(self.check_key(), name="phase 1 key check")
        model = self.base_combo.model()
        for index in range(self.base_combo.count()):
            name = self.base_combo.itemData(index)
            spec = CATALOG.get(name)
            # On Together only the catalog's Together models; locally anything.
            model.item(index).setEnabled(not together or (spec is not None and spec.together_available))
        if not self._item_enabled(self.base_combo.currentIndex()):
            self.base_combo.setCurrentIndex(self.base_combo.findData(DEFAULT_TOGETHER_BASE_MODEL))
        elif not together and not self._restoring and not base_on_disk(str(self.base_combo.currentData())):
            # Switching to this computer must not keep a base that is not here (it would fail at once).
            previous = self.base_combo.currentText().split(" · ")[0]
            self.base_combo.setCurrentIndex(self.base_combo.findData(DEFAULT_BASE_MODEL))
            self.message.show_info(
                f"{previous} is not on this computer, so the built-in SmolLM2 model is selected: "
                "it trains here in minutes."
            )
        self.base_folder_button.setVisible(not together)
        self.device_picker.setVisible(not together)
        self.device_label.setVisible(not together)
        self.max_steps.setVisible(not together)
        self.max_steps_label.setVisible(not together)
        self.suffix.setEnabled(True)
        self._on_base_changed()

    def _on_base_changed(self, *_args) -> None:
        name = self.base_combo.currentData()
        spec = CATALOG.get(name) if isinstance(name, str) else None
        if spec is not None:
            if self.backend_name() == "together":
                where = f"Together id {spec.together_id}."
            elif spec.embedded:
                where = "Its weights are in the app: trains offline."
            elif spec.local_available:
                where = "Downloaded: trains offline."
            else:
                where = "Local training needs its weights: download them below."
            self.base_info.setText(
                f"{spec.num_layers} layers, hidden size {spec.hidden_size}, context "
                f"{spec.context_length:,} tokens. {where}"
            )
        else:
            self.base_info.setText(f"Local model folder {name}.")
        local = self.backend_name() == "local"
        self.base_download.set_base(name if local else None)
        self._check_memory()
        self._settings_changed()

    def _on_base_downloaded(self, name: str) -> None:
        index = self.base_combo.findData(name)
        if index >= 0:
            label = base_model_label(name)
            self.base_combo.setItemText(index, label)
            self.base_combo.setItemData(index, label, Qt.ItemDataRole.ToolTipRole)
        self._on_base_changed()

    def _on_device_changed(self, *_args) -> None:
        self.controller.set_local_device(self.device_picker.device())
        self._check_memory()
        self._settings_changed()

    def _check_memory(self, *_args) -> None:
        """Local runs: the memory verdict for this base, rank and device (off the GUI thread)."""
        if self.backend_name() != "local" or not self.base_combo.currentData():
            self.memory_verdict.clear_message()
            return
        from cognitivetwin_core.phase1.lora_device_plan import local_memory_verdict

        rank = self.lora_rank.value()
        settings = Phase1Settings(base_model=self.base_combo.currentData(), lora_r=rank, lora_alpha=2 * rank)
        self.memory_verdict.check(
            local_memory_verdict, settings.base_model, settings, device=self.device_picker.device()
        )

    def set_local_base_folder(self, folder: str | Path) -> None:
        """Train locally on a Hugging Face model folder (added to the list and selected)."""
        folder = str(Path(folder).expanduser().resolve())
        self._restoring = True  # the folder replaces the base: no "not on this computer" switch
        self.set_backend("local")
        self._restoring = False
        settings.write(BACKEND_SETTING, "local")
        index = self.base_combo.findData(folder)
        if index < 0:
            self.base_combo.addItem(f"Folder: {folder} · local only", folder)
            index = self.base_combo.count() - 1
        self.base_combo.setCurrentIndex(index)

    def _choose_base_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a Hugging Face model folder")
        if folder:
            self.set_local_base_folder(folder)

    def _choose_data_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Phase 1 data (chat JSONL)", self.data_path.text(), "JSON Lines (*.jsonl *.json);;All files (*)"
        )
        if path:
            self.data_path.setText(path)

    def current_settings(self) -> Phase1Settings:
        """The form as core settings (raises InputError with what to fix)."""
        from cognitivetwin_core.errors import InputError

        text = self.learning_rate.text().strip()
        learning_rate = None
        if text:
            try:
                learning_rate = float(text.replace(",", "."))
            except ValueError:
                raise InputError(f"The learning rate {text!r} is not a number: write e.g. 0.0001 or 1e-4.") from None
            if not 0 < learning_rate < 1:
                raise InputError(f"The learning rate {text} must be between 0 and 1 (e.g. 1e-4).")
        suffix = self.suffix.text().strip() or None
        if suffix and not re.fullmatch(SUFFIX_PATTERN, suffix):
            raise InputError("The suffix may hold lower-case letters, digits and dashes (at most 40).")
        rank = self.lora_rank.value()
        local = self.backend_name() == "local"
        return Phase1Settings(
            base_model=self.base_combo.currentData(),
            epochs=self.epochs.value(),
            learning_rate=learning_rate,
            lora_r=rank,
            lora_alpha=2 * rank,
            suffix=suffix,
            max_steps=(self.max_steps.value() or None) if local else None,
        )

    def _settings_changed(self, *_args) -> None:
        self._save_choices()
        if self.plan is not None:
            self.plan = None
            self.dry_run_summary.setText("The settings changed: run the dry run again before launching.")
        self._update_buttons()

    # --- dry run and launch -------------------------------------------------------------------

    async def dry_run(self) -> DryRun | None:
        from cognitivetwin_core.errors import CognitiveTwinError

        self.message.clear_message()
        try:
            settings_ = self.current_settings()
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
            return None
        check = self.launch_check()
        if not check.ok:
            self.message.show_error(check.reason)
            return None
        data = self.data_path.text().strip()
        if data:
            settings.write(DATA_PATH_SETTING, data)
        else:
            data = await self._export_for_dry_run(settings_.base_model)
            if data is None:
                return None
        backend = self.backend_name()
        self.dry_run_summary.setText(
            "Checking the data and uploading it to Together…"
            if backend == "together"
            else "Checking the data and estimating the time…"
        )
        self.plan = None
        self._update_buttons()
        plan = await self.controller.dry_run(backend, data, settings_)
        if plan is not None:
            try:
                still = (
                    self.current_settings() == settings_
                    and self.backend_name() == backend
                    and (self.data_path.text().strip() or self._auto_data_path) == data
                )
            except CognitiveTwinError:
                still = False
            if still:  # the form did not change while the dry run ran
                self.plan = plan
                self._update_buttons()
        return plan

    async def _export_for_dry_run(self, base_model: str) -> str | None:
        """The workspace's conversations as Phase 1 JSONL for `base_model`, written atomically
        into the workspace's exports folder off the GUI thread (no manual export needed)."""
        import asyncio

        from app.tabs.data_jobs import run_export
        from cognitivetwin_core.errors import CognitiveTwinError

        target = Path(self.workspace.path) / "exports" / f"phase1-{Path(str(base_model)).name}.jsonl"
        self.dry_run_summary.setText("Preparing your conversations for training…")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(
                run_export, lambda *_: None, lambda: False, self.workspace.path, "phase1", target, base_model
            )
        except (CognitiveTwinError, OSError) as exc:
            self.message.show_error(f"Could not prepare your conversations for training: {exc}")
            self.dry_run_summary.setText("The dry run did not pass: see the message above.")
            return None
        self._auto_data_path = str(target)
        return str(target)

    def _on_dry_run_done(self, plan: DryRun) -> None:
        self.upload_progress.hide()
        lines = plan.summary_lines()
        if plan.data.path == self._auto_data_path:
            lines[0] = (
                f"data: your workspace's conversations ({plan.data.examples} conversations, prepared in {plan.data.path})"
            )
        if plan.backend == "local" and plan.estimate_note:
            lines.append(plan.estimate_note)
        if plan.backend == "together":
            lines.append("Launching starts a paid job; you will be asked to confirm.")
        self.dry_run_summary.setText("\n".join(lines))
        self._update_buttons()

    def _on_upload_progress(self, done: int, total: int) -> None:
        self.upload_progress.show()
        self.upload_progress.setRange(0, max(total, 1))
        self.upload_progress.setValue(done)

    async def launch(self) -> str | None:
        plan = self.plan
        if plan is None:
            self.message.show_error("Run the dry run of these settings first: it shows what the launch costs.")
            return None
        if not await LaunchConfirmDialog.ask(self, plan):
            self.message.show_info("Not launched: nothing was started and nothing was charged.")
            return None
        # A plan is launched once: a second launch needs a new dry run (and a new confirmation).
        self.plan = None
        self.dry_run_summary.setText(
            self.dry_run_summary.text() + "\n\nLaunched. Run the dry run again for another job."
        )
        self._update_buttons()
        if plan.backend == "local":
            self._reset_plot()
            self._local_plot_job = None
            self.loss_status.setText("Loading the base model…")
        job_id = await self.controller.launch(plan)
        if job_id:
            self.message.show_ok(f"Launched {job_id}. You can close the app: monitoring resumes when it opens again.")
        return job_id

    def _on_launched(self, job_id: str) -> None:
        record = self._record(job_id)
        if record is not None and record.backend == "local":
            self._local_plot_job = job_id
            self.loss_status.setText(f"{job_id}: training on this computer…")
            self.message.show_ok(f"Started the local run {job_id}. Cancel stops it after the current step.")
        self._select_job(job_id)
        self.refresh_jobs()

    def _on_loss_point(self, job_id: str, step: int, loss: float) -> None:
        if self._local_plot_job is None:
            self._local_plot_job = job_id
        if job_id != self._local_plot_job:
            return
        if self.loss_plot is None:
            self._reset_plot()
        self._losses.setdefault(job_id, []).append(loss)
        self.loss_plot.append(LOSS_SERIES, step, loss)
        update = self.controller.live_update(job_id)
        total = f"/{update.total_steps}" if update is not None and update.total_steps else ""
        self.loss_status.setText(f"{job_id}: step {step}{total}, loss {loss:.4f}")

    # --- jobs -----------------------------------------------------------------------------------

    def _schedule_refresh(self) -> None:
        if not self._table_timer.isActive():
            self._table_timer.start()

    def selected_job_id(self) -> str | None:
        rows = self.jobs_table.selectionModel().selectedRows() if self.jobs_table.selectionModel() else []
        if not rows:
            return None
        item = self.jobs_table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _select_job(self, job_id: str) -> None:
        for row in range(self.jobs_table.rowCount()):
            item = self.jobs_table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == job_id:
                self.jobs_table.selectRow(row)
                return

    def job_row(self, job_id: str) -> dict[str, str] | None:
        """The cells of `job_id`'s row by column name (for tests and accessibility)."""
        for row in range(self.jobs_table.rowCount()):
            item = self.jobs_table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == job_id:
                return {name: self.jobs_table.item(row, col).text() for col, name in enumerate(COLUMNS)}
        return None

    def refresh_jobs(self) -> None:
        selected = self.selected_job_id()
        records = list(reversed(self.controller.jobs()))  # newest first
        now = time.time()
        any_running = False
        self.jobs_table.setUpdatesEnabled(False)
        self.jobs_table.setRowCount(len(records))
        for row, record in enumerate(records):
            cells = self._cells(record, now)
            any_running |= not record.terminal
            for col, text in enumerate(cells):
                item = self.jobs_table.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    self.jobs_table.setItem(row, col, item)
                item.setText(text)
                if col == 0:
                    item.setData(Qt.ItemDataRole.UserRole, record.job_id)
                    item.setToolTip(record.error or record.job_id)
        self.jobs_table.setUpdatesEnabled(True)
        if selected:
            self._select_job(selected)
        if any_running and not self._clock.isActive():
            self._clock.start()
        elif not any_running:
            self._clock.stop()
        self._update_buttons()

    def _cells(self, record: JobRecord, now: float) -> list[str]:
        job_id = record.job_id
        live = self.controller.live_update(job_id)
        status = record.status or "unknown"  # the core stores every status it sees
        step = live.step if live is not None and live.step is not None else record.step
        total = live.total_steps if live is not None and live.total_steps else record.total_steps
        if status == "completed":
            progress = "100%" + (f" ({total}/{total} steps)" if total else "")
        elif step is not None and total:
            progress = f"{100 * min(1.0, step / total):.0f}% (step {step}/{total})"
        else:
            progress = "–"
        created = parse_time(record.created_at)
        ended = parse_time(record.updated_at) if is_terminal(status) else now
        elapsed = format_duration(ended - created) if created and ended else "–"
        eta_seconds = live.eta_seconds if live is not None and live.eta_seconds is not None else record.eta_seconds
        eta = format_duration(eta_seconds) if eta_seconds is not None and not is_terminal(status) else "–"
        backend = record.backend or "?"
        if backend == "together":
            price = record.estimate.get("price")
            cost = f"${price:.2f} (estimate)" if isinstance(price, (int, float)) else "not estimated"
        else:
            cost = "free (local)"
        adapter = record.adapter_id or ("not downloaded yet" if status == "completed" else "–")
        base = record.base_model or record.model_id or "?"
        if isinstance(base, str) and "/" in base and len(base) > 40:
            base = "…" + base[-39:]
        if job_id in self.controller.cancel_requested and not is_terminal(status):
            status += " (cancelling)"
        if record.duplicates:
            status += f" · duplicates: {', '.join(record.duplicates)}"
        return [
            job_id,
            backend,
            str(base),
            status,
            progress,
            elapsed,
            eta,
            cost,
            adapter,
            self._evaluation_cell(record),
        ]

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

    def _record(self, job_id: str | None) -> JobRecord | None:
        if job_id is None or self.workspace is None:
            return None
        return read_job(self.workspace, job_id)

    def launch_check(self) -> LaunchCheck:
        """Whether a job with the form's choices can start (the core's check)."""
        if self.workspace is None:
            return LaunchCheck(False, "No workspace is open yet.")
        return launch_check(
            self.backend_name(),
            str(self.base_combo.currentData()),
            has_key=self.has_key,
            conversations=self.workspace.count_conversations(),
            data_path=self.data_path.text().strip() or None,
        )

    def _show_launch_check(self, check: LaunchCheck) -> None:
        self.launch_reason.setVisible(not check.ok)
        self.launch_reason.setText(check.reason)
        self.fix_button.setVisible(not check.ok and bool(check.fix))
        self.fix_button.setText(check.fix_label)
        self.fix_button.setProperty("fix", check.fix or "")

    def _apply_fix(self) -> None:
        fix = self.fix_button.property("fix")
        if fix == FIX_USE_BUILTIN:
            self.set_backend("local")
            self.base_combo.setCurrentIndex(self.base_combo.findData(DEFAULT_BASE_MODEL))
        elif fix == FIX_CHOOSE_FILE:
            self.data_path.clear()  # back to the workspace's conversations
        elif fix == FIX_ADD_KEY:
            self.openTabRequested.emit("Connections")
        elif fix == FIX_IMPORT_DATA:
            self.openTabRequested.emit("Data")
        self._update_buttons()

    def _update_buttons(self, *_args) -> None:
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
        self.message.clear_message()
        if action == "cancel":
            start_task(self.controller.cancel(job_id), name=f"cancel {job_id}")
        elif action == "download":
            start_task(self.controller.download(job_id), name=f"download {job_id}")
        elif action == "evaluate":
            if self.controller.evaluate(job_id):
                self.append_log(f"evaluating {job_id} against its base…")
        elif action == "resume":
            self._reset_plot()
            self._local_plot_job = job_id
            self.loss_status.setText(f"{job_id}: resuming from its last checkpoint…")
            start_task(self.controller.resume_local(job_id), name=f"resume {job_id}")
        self._update_buttons()

    # --- outcomes -------------------------------------------------------------------------------

    def _on_busy(self, busy: bool) -> None:
        if not busy:
            self.upload_progress.hide()
        self._update_buttons()

    def _on_failed(self, action: str, message: str) -> None:
        if action == "dry run":
            self.dry_run_summary.setText("The dry run did not pass: see the message above.")
        self.message.show_error(message)

    def _on_evaluation_progress(self, job_id: str, text: str) -> None:
        self._evaluation_status[job_id] = f"evaluating: {text}"
        self._schedule_refresh()

    def _on_evaluation_done(self, job_id: str, report: dict) -> None:
        from cognitivetwin_core.playground.evaluation import headline, report_lines

        self._evaluation_status.pop(job_id, None)
        for line in report_lines(report):
            self.append_log(line)
        self.message.show_ok(
            f"{job_id} evaluated: {headline(report)} (lower perplexity under the twin means it learned "
            "your replies; the numbers and examples are in the log below)."
        )
        self._schedule_refresh()

    def _on_adapter_ready(self, job_id: str, folder: str) -> None:
        self.message.show_ok(
            f"{job_id} finished: its adapter is registered in the workspace ({folder}). Phase 2 can use it now."
        )

    def _on_job_ended(self, update: JobUpdate) -> None:
        trend = self.loss_verdict(update.job_id)
        if update.job_id == self._local_plot_job and self.loss_plot is not None:
            self.loss_plot.flush()
            self.loss_status.setText(
                f"{update.job_id}: {update.status} after {self.plotted_steps()} plotted step(s)."
                + (f" {trend.message}" if trend is not None else "")
            )
        if update.status == "completed":
            self.notify("Phase 1 job finished", f"{update.job_id} completed; its adapter is in the workspace.")
            if update.job_id.startswith("local-"):
                record = self._record(update.job_id)
                adapter_path = record.adapter_path if record is not None else None
                text = f"{update.job_id} finished: its adapter is registered ({adapter_path})."
                if trend is not None and trend.kind in ("rising", "flat"):
                    self.message.show_info(f"{text} But: {trend.message}")
                else:
                    self.message.show_ok(text + (f" {trend.message}" if trend is not None else ""))
        elif update.status == "cancelled" and update.job_id in self.controller.cancel_requested:
            self.notify("Phase 1 job cancelled", f"{update.job_id} was cancelled.")
            self.message.show_info(update.message or f"{update.job_id} was cancelled.")
        else:
            self.notify("Phase 1 job failed", update.message or f"{update.job_id} ended {update.status}.")
        self.refresh_jobs()

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
                "a real run needs more steps (leave “Stop after steps” at “all”).",
            )
        return loss_trend(losses)

    # --- remembered choices -------------------------------------------------------------------

    def _restore_choices(self) -> None:
        backend = settings.read(BACKEND_SETTING)
        if backend in ("local", "together"):
            self.set_backend(backend)
        base = settings.read(BASE_SETTING)
        if base:
            index = self.base_combo.findData(base)
            if index < 0 and Path(str(base)).is_dir():
                self.base_combo.addItem(f"Folder: {base} · local only", str(base))
                index = self.base_combo.count() - 1
            if index >= 0:
                self.base_combo.setCurrentIndex(index)
        elif backend is None:
            self.base_combo.setCurrentIndex(self.base_combo.findData(DEFAULT_BASE_MODEL))
        for key, spin in (
            (EPOCHS_SETTING, self.epochs),
            (RANK_SETTING, self.lora_rank),
            (MAX_STEPS_SETTING, self.max_steps),
        ):
            try:
                value = int(settings.read(key, spin.value()))
            except (TypeError, ValueError):
                continue
            spin.setValue(value)
        self.learning_rate.setText(str(settings.read(LEARNING_RATE_SETTING, "") or ""))
        self.suffix.setText(str(settings.read(SUFFIX_SETTING, "") or ""))

    def _save_choices(self) -> None:
        if getattr(self, "_restoring", True):
            return
        settings.write(BASE_SETTING, str(self.base_combo.currentData()))
        settings.write(EPOCHS_SETTING, self.epochs.value())
        settings.write(RANK_SETTING, self.lora_rank.value())
        settings.write(MAX_STEPS_SETTING, self.max_steps.value())
        settings.write(LEARNING_RATE_SETTING, self.learning_rate.text().strip())
        settings.write(SUFFIX_SETTING, self.suffix.text().strip())

    def append_log(self, line: str) -> None:
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

    # --- data export ----------------------------------------------------------------------------

    def export_workspace_data(self) -> None:
        if self.workspace is None:
            return
        from app.tabs.data_jobs import run_export

        base = self.base_combo.currentData()
        target = Path(self.workspace.path) / "exports" / f"phase1-{Path(str(base)).name}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.message.show_info("Exporting the workspace's conversations for Phase 1…")
        self._export_target = target
        self.export_job.start(run_export, self.workspace.path, "phase1", target, base)
        self._update_buttons()

    def _on_export_done(self, summary) -> None:
        from app.tabs.data_jobs import describe_export

        self.data_path.setText(str(self._export_target))
        self.message.show_ok(f"{describe_export(summary)} Saved as {self._export_target}; run the dry run next.")
