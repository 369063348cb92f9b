"""The Phase 1 tab's settings form: where to train, the base, the data, the numbers; remembered across restarts.

A part of `Phase1Tab` (app/tabs/phase1_tab.py), mixed into it: the widgets and state are
the tab's attributes."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDoubleValidator, QRegularExpressionValidator, QStandardItemModel
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)

from app import settings
from app.qt.tasks import start_task
from app.widgets.advanced_fold import AdvancedFold
from app.widgets.base_download import BaseDownloadRow
from app.widgets.device_picker import DevicePicker
from cognitivetwin_core import glossary
from cognitivetwin_core.models.catalog import CATALOG, DEFAULT_BASE_MODEL, DEFAULT_TOGETHER_BASE_MODEL
from cognitivetwin_core.phase1.jobs import Phase1Settings
from cognitivetwin_core.phase1.readiness import base_on_disk

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


def base_model_label(short_name: str) -> str:
    spec = CATALOG[short_name]
    if not spec.together_available:
        where = "local only"
    elif spec.local_available:
        where = "Together or local"
    else:
        where = "Together only (local needs its weights downloaded)"
    return f"{spec.display_name} · hidden {spec.hidden_size}, context {spec.context_length // 1024}k · {where}"


class Phase1SettingsForm:
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

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 20)
        self.epochs.setValue(3)
        self.epochs.setToolTip(f"Epochs: {glossary.meaning('epoch')}")
        self.advanced = AdvancedFold()
        self.advanced_button = self.advanced.button
        epochs_row = QHBoxLayout()
        epochs_row.addWidget(self.epochs)
        epochs_row.addStretch(1)
        epochs_row.addWidget(self.advanced_button)
        form.addRow("Passes over your data", epochs_row)

        # The engineer's settings, folded away: plain names, the exact term in each tooltip.
        advanced = QFormLayout()
        self.advanced.content_layout.addLayout(advanced)
        self.lora_rank = QSpinBox()
        self.lora_rank.setRange(1, 256)
        self.lora_rank.setValue(16)
        self.lora_rank.setToolTip(f"LoRA rank r; alpha is set to 2 x r. LoRA rank: {glossary.meaning('LoRA rank')}")
        self.learning_rate = QLineEdit()
        self.learning_rate.setValidator(QDoubleValidator(1e-8, 1.0, 10))
        self.learning_rate.setPlaceholderText("default (best)")
        self.learning_rate.setToolTip(
            "Empty: the tried default for where it trains (best left empty). "
            f"Learning rate: {glossary.meaning('learning rate')}"
        )
        self.learning_rate.setMaximumWidth(130)
        sizes = QHBoxLayout()
        for label, widget in (("Adapter size", self.lora_rank), ("Learning speed", self.learning_rate)):
            name = QLabel(label)
            name.setToolTip(widget.toolTip())
            sizes.addWidget(name)
            sizes.addWidget(widget)
        sizes.addStretch(1)
        advanced.addRow("Training", sizes)
        self.suffix = QLineEdit()
        self.suffix.setPlaceholderText("e.g. my-twin")
        self.suffix.setMaxLength(40)
        self.suffix.setValidator(QRegularExpressionValidator(SUFFIX_PATTERN))
        self.suffix.setToolTip(
            "Lower-case letters, digits and dashes; part of the Together model's name. "
            f"Suffix: {glossary.meaning('suffix')}"
        )
        self.max_steps_label = QLabel("Stop early after")
        self.max_steps = QSpinBox()
        self.max_steps.setRange(0, 1_000_000)
        self.max_steps.setSpecialValueText("no limit")
        self.max_steps.setSuffix(" steps")
        self.max_steps.setToolTip(
            "Local only: stop early for a quick try (no limit = every pass). "
            f"Training steps: {glossary.meaning('training steps')}"
        )
        self.max_steps_label.setToolTip(self.max_steps.toolTip())
        extra = QHBoxLayout()
        extra.addWidget(self.suffix, 1)
        extra.addWidget(self.max_steps_label)
        extra.addWidget(self.max_steps)
        self.suffix_label = QLabel("Name on Together")
        self.suffix_label.setToolTip(self.suffix.toolTip())
        advanced.addRow(self.suffix_label, extra)
        form.addRow(self.advanced)

        for widget in (self.epochs, self.lora_rank, self.max_steps):
            widget.valueChanged.connect(self._settings_changed)
        for widget in (self.learning_rate, self.suffix, self.data_path):
            widget.textChanged.connect(self._settings_changed)
        self.base_combo.currentIndexChanged.connect(self._on_base_changed)
        self.device_picker.currentIndexChanged.connect(self._on_device_changed)
        self.lora_rank.valueChanged.connect(self._check_memory)
        return group

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
