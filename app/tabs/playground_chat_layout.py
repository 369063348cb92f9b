"""The layout of the Playground's Chat panel (its widgets, made once), mixed into `ChatPanel`
(app/tabs/playground_chat.py), which gives them their behaviour."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.widgets.advanced_fold import AdvancedFold
from app.widgets.message_label import MessageLabel


class ChatPanelLayout:
    """The Chat panel's widgets; `ChatPanel` calls `_build()` once and connects them."""

    # ----- building --------------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.adapter_combo = QComboBox()
        self.adapter_combo.setMinimumContentsLength(28)
        self.adapter_combo.setToolTip("A Phase 1 adapter: your twin is the base model with it applied")
        self.open_adapter_button = QPushButton("Open adapter folder…")
        self.run_label = QLabel("")
        self.run_label.setProperty("role", "hint")
        self.run_label.setWordWrap(True)
        top.addWidget(QLabel("Twin:"))
        top.addWidget(self.adapter_combo, 1)
        top.addWidget(self.open_adapter_button)
        outer.addLayout(top)
        outer.addWidget(self.run_label)

        settings = QGridLayout()
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.1, value=0.7, decimals=2)
        self.temperature.setToolTip("0: always the likeliest word; higher: more varied replies")
        self.top_p = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, value=0.9, decimals=2)
        self.top_p.setToolTip("Only the likeliest words that together make this share are drawn from")
        self.max_new_tokens = QSpinBox(minimum=1, maximum=2048, value=160)
        self.max_new_tokens.setToolTip("The longest reply, in tokens (about ¾ of a word each)")
        self.seed = QSpinBox(minimum=-1, maximum=2**31 - 1, value=-1)
        self.seed.setSpecialValueText("random")
        self.seed.setToolTip("The same seed gives the same reply to the same conversation")
        self.system_prompt = QLineEdit()
        self.system_prompt.setPlaceholderText("Optional: instructions the twin gets before the conversation")
        self.compare_box = QCheckBox("Compare with the base")
        self.compare_box.setToolTip("Also show the base model's reply, without your adapter")
        self.memory_box = QCheckBox("Remember my past messages")
        self.memory_box.setToolTip(
            "Before each reply, your own past messages closest to what you wrote are shown to the twin "
            "(and to you, above the reply). Build the memory with `cognitivetwin memory build`."
        )
        form = QFormLayout()
        form.addRow("System prompt:", self.system_prompt)
        # Plain names; the engineer's words (temperature, top-p, tokens, seed) in the tooltips,
        # and those settings folded under "Advanced settings" with their tried defaults.
        for row, column, label, widget, term in (
            (0, 0, "Surprise", self.temperature, "Temperature"),
            (0, 2, "Word choice", self.top_p, "Top-p"),
            (1, 0, "Longest reply", self.max_new_tokens, "Max new tokens"),
            (1, 2, "Repeatable", self.seed, "Seed"),
        ):
            name = QLabel(label)
            widget.setToolTip(f"{term}: {widget.toolTip()}")
            name.setToolTip(widget.toolTip())
            settings.addWidget(name, row, column)
            settings.addWidget(widget, row, column + 1)
        settings.setColumnStretch(4, 1)
        self.advanced = AdvancedFold()
        self.advanced.content_layout.addLayout(settings)
        self.advanced.content_layout.addLayout(form)
        self.advanced_button = self.advanced.button
        options = QHBoxLayout()
        options.addWidget(self.compare_box)
        options.addWidget(self.memory_box)
        options.addStretch(1)
        options.addWidget(self.advanced_button)
        outer.addLayout(options)
        outer.addWidget(self.advanced)

        self.message = MessageLabel()
        outer.addWidget(self.message)
        self.transcript = QWidget()
        self.transcript_layout = QVBoxLayout(self.transcript)
        self.transcript_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.transcript)
        outer.addWidget(self.scroll, 1)

        bottom = QHBoxLayout()
        self.input = QPlainTextEdit()
        self.input.setPlaceholderText("Write to your twin…")
        self.input.setMaximumHeight(70)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        row = QHBoxLayout()
        self.clear_button = QPushButton("Clear")
        self.save_button = QPushButton("Save…")
        row.addWidget(self.clear_button)
        row.addWidget(self.save_button)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addLayout(row)
        self.status = QLabel("")
        self.status.setProperty("role", "hint")
        bottom.addWidget(self.input, 1)
        bottom.addLayout(buttons)
        outer.addLayout(bottom)
        outer.addWidget(self.status)
        from app.tabs.playground_teach import TeachPanel

        self.teach = TeachPanel()
        self.teach.taught.connect(self._taught)
        self.teach.teach_button.clicked.connect(self._update_buttons)  # after start(): the twin is locked
        self.teach.job.finished.connect(self._update_buttons)
        self.teach.busyChanged.connect(self._update_buttons)  # Resume and Teach on Together lock it too
        outer.addWidget(self.teach)

        self.send_button.clicked.connect(self.send)
        self.stop_button.clicked.connect(self.stop)
        self.clear_button.clicked.connect(self.clear)
        self.save_button.clicked.connect(self._save_clicked)
        self.open_adapter_button.clicked.connect(self._open_adapter_folder)
        self.adapter_combo.currentIndexChanged.connect(self._adapter_changed)
        self.input.textChanged.connect(self._update_buttons)
