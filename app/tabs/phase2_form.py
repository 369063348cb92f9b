"""The Phase 2 tab's settings form: base (catalog models available offline, or a local model
folder) and Phase 1 adapter, data (the whole workspace or one source), the training settings
with the engineer's ones folded, the device with what was detected, and the Phase2Config they
make (see phase2_tab.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.tabs.phase2_runs_panel import Phase2RunsPanel, read_runs  # noqa: F401 - read_runs: the tab's API
from app.widgets.base_download import BaseDownloadRow
from app.widgets.memory_verdict import MemoryVerdictLabel
from cognitivetwin_core.models.catalog import CATALOG, DEFAULT_BASE_MODEL

DATA_ALL = "all"
FOLDER_ITEM = "folder"
ALL_GPUS = "cuda-all"  # the device choice that encodes on every GPU


def count_gpus(_progress, _cancelled) -> int:
    # In the helper child: counting GPUs imports torch, which must not happen in this process.
    from cognitivetwin_core.child_processes import call_in_child
    from cognitivetwin_core.models.devices import cuda_device_count

    return call_in_child(cuda_device_count)


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


class Phase2SettingsForm:
    """The settings: base and Phase 1 adapter (catalog or folder), data, training settings, device;
    the config they make."""

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
