"""The Playground tab's inputs: a message of the workspace (the conversation browser) or typed text
with its context, the trajectory sliders, and Compare (another message, or this one under
another run); each change becomes an analysis request, debounced (see playground_tab.py).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.tabs.playground_analysis_view import titled_group
from app.tabs.playground_controller import AnalysisRequest, parse_context
from app.tabs.playground_picker import MessagePicker
from app.widgets.trajectory_sliders import TrajectorySliders
from cognitivetwin_core.conversation import ROLES


class PlaygroundInputs:
    """What is analysed: a workspace message or typed text, the trajectory sliders, and what it is
    compared with."""

    def _build_inputs(self) -> QWidget:
        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 4, 0)

        self.input_tabs = QTabWidget()
        self.picker = MessagePicker()
        self.picker.messageChosen.connect(self._message_chosen)
        self.input_tabs.addTab(self.picker, "Workspace message")

        typed = QWidget()
        typed_layout = QVBoxLayout(typed)
        typed_layout.setContentsMargins(2, 2, 2, 2)
        role_row = QHBoxLayout()
        self.typed_role = QComboBox()
        for role in ROLES:
            self.typed_role.addItem(role)
        self.typed_role.setCurrentText("user")
        role_row.addWidget(QLabel("Role"))
        role_row.addWidget(self.typed_role, 1)
        typed_layout.addLayout(role_row)
        self.typed_text = QPlainTextEdit()
        self.typed_text.setPlaceholderText("Type or paste a message…")
        self.typed_context = QPlainTextEdit()
        self.typed_context.setPlaceholderText(
            "Optional context: the earlier messages, one paragraph each (blank line between).\n"
            "Start a paragraph with 'user:' or 'assistant:' to set its role."
        )
        self.typed_context.setMaximumHeight(110)
        self.live_check = QCheckBox("Analyse as I type")
        self.live_check.setChecked(True)
        self.analyze_button = QPushButton("Analyse")
        typed_layout.addWidget(self.typed_text, 2)
        typed_layout.addWidget(QLabel("Context"))
        typed_layout.addWidget(self.typed_context, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.live_check)
        buttons.addStretch(1)
        buttons.addWidget(self.analyze_button)
        typed_layout.addLayout(buttons)
        self.input_tabs.addTab(typed, "Typed text")
        layout.addWidget(self.input_tabs, 3)

        self.sliders = TrajectorySliders()
        self.sliders.edited.connect(lambda *_: self._slider_timer.start())
        # "Trajectory" is the exact term: the title names the idea, the tooltip the term.
        layout.addWidget(
            titled_group(
                "Where it sits in the chat",
                self.sliders,
                "The trajectory: where the message sits in its conversation, five numbers from 0 to 1; "
                "move a slider to see how the outputs change.",
            )
        )

        compare_box = QGroupBox("Compare")
        compare_layout = QVBoxLayout(compare_box)
        compare_layout.setContentsMargins(6, 6, 6, 6)
        self.compare_check = QCheckBox("Compare with…")
        self.compare_message_radio = QRadioButton("another message")
        self.compare_run_radio = QRadioButton("this message under another run")
        self.compare_message_radio.setChecked(True)
        self.compare_mode = QButtonGroup(self)
        self.compare_mode.addButton(self.compare_message_radio)
        self.compare_mode.addButton(self.compare_run_radio)
        self.compare_picker = MessagePicker(compact=True)
        self.compare_run_combo = QComboBox()
        self.compare_run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.compare_run_combo.setMinimumContentsLength(20)
        compare_layout.addWidget(self.compare_check)
        compare_layout.addWidget(self.compare_message_radio)
        compare_layout.addWidget(self.compare_picker)
        compare_layout.addWidget(self.compare_run_radio)
        compare_layout.addWidget(self.compare_run_combo)
        layout.addWidget(compare_box, 2)
        self._compare_controls = (
            self.compare_message_radio,
            self.compare_run_radio,
            self.compare_picker,
            self.compare_run_combo,
        )
        self._update_compare_controls()

        self.input_tabs.currentChanged.connect(lambda *_: self.analyze_now())
        self.typed_text.textChanged.connect(self._typed_changed)
        self.typed_context.textChanged.connect(self._typed_changed)
        self.typed_role.currentIndexChanged.connect(self._typed_changed)
        self.analyze_button.clicked.connect(self.analyze_now)
        self.compare_check.toggled.connect(self._compare_toggled)
        self.compare_mode.buttonToggled.connect(lambda *_: self._compare_settings_changed())
        self.compare_picker.messageChosen.connect(lambda *_: self._compare_settings_changed())
        self.compare_run_combo.currentIndexChanged.connect(lambda *_: self._compare_settings_changed())

        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)
        # Only up and down: long lines are cut short (their whole text is in the tooltip).
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return scroll

    def _message_chosen(self, conversation_id: str, turn_index: int) -> None:
        if self.input_tabs.currentIndex() != 0:
            self.input_tabs.setCurrentIndex(0)  # analyses through currentChanged
        else:
            self.analyze_now()

    def _show_message(self, conversation_id: str, turn_index: int) -> None:
        """Jump to a workspace message (a plan-step neighbour or a map point)."""
        self.input_tabs.setCurrentIndex(0)
        self.picker.select(conversation_id, turn_index)

    def _typed_changed(self) -> None:
        if self.input_tabs.currentIndex() != 1:
            return
        if self.live_check.isChecked():
            self._typing_timer.start()

    def build_request(self) -> AnalysisRequest | None:
        """The analysis the inputs ask for now (None when something is missing).

        The sliders show the message's own trajectory until the user edits them; an edit
        holds for that message only (another message, or other typed text, starts afresh
        from its own)."""
        run = self.current_run()
        if run is None:
            return None
        if self.input_tabs.currentIndex() == 0:
            chosen = self.picker.current()
            if chosen is None:
                return None
            request = AnalysisRequest.for_workspace_message(
                run.run_dir, self.picker.conversation, chosen[1], self.picker.annotations[chosen[1]]
            )
            key = chosen
        else:
            text = self.typed_text.toPlainText()
            if not text.strip():
                return None
            context = parse_context(self.typed_context.toPlainText(), before_role=self.typed_role.currentText())
            request = AnalysisRequest.for_typed_text(run.run_dir, text, context, self.typed_role.currentText())
            key = ("typed",)
        if key != self._slider_key or not self.sliders.is_edited():
            # Typed text has no annotation: its trajectory is computed from it and its context.
            self.sliders.set_trajectory(request.trajectory.coordinates, request.trajectory.phase_id)
            self._slider_key = key
            return request
        return request.with_trajectory(self.sliders.coordinates(), self.sliders.phase_id())

    def _compare_request(self, main: AnalysisRequest) -> AnalysisRequest | None:
        if not self.compare_check.isChecked():
            return None
        if self.compare_run_radio.isChecked():
            other = self.compare_run_combo.currentData()
            if other is None:
                return None
            return main.under_run(other.run_dir)
        chosen = self.compare_picker.current()
        run = self.current_run()
        if chosen is None or run is None:
            return None
        return AnalysisRequest.for_workspace_message(
            run.run_dir, self.compare_picker.conversation, chosen[1], self.compare_picker.annotations[chosen[1]]
        )

    def analyze_now(self) -> None:
        self._typing_timer.stop()
        self._slider_timer.stop()
        if not self.isVisible():
            self._load_when_shown = True
            return
        request = self.build_request()
        if request is None:
            return
        self._submit("main", request)
        compare = self._compare_request(request)
        if compare is not None:
            self._submit("compare", compare)

    def _submit(self, slot: str, request: AnalysisRequest) -> None:
        self._serial += 1
        request.slot, request.serial = slot, self._serial
        self._wanted[slot] = self._serial
        self.controller.request(request, self.workspace.path if self.workspace is not None else None)

    def _compare_toggled(self, on: bool) -> None:
        self._update_compare_controls()
        if on:
            self.result_tabs.setCurrentIndex(1)
            self.analyze_now()
        else:
            self.compare_result = None
            if self.style_map is not None:
                self.style_map.set_compare(None)
            self.result_tabs.setCurrentIndex(0)

    def _compare_settings_changed(self) -> None:
        self._update_compare_controls()
        if self.compare_check.isChecked():
            self.analyze_now()

    def _update_compare_controls(self) -> None:
        on = self.compare_check.isChecked()
        for widget in self._compare_controls:
            widget.setEnabled(on)
        if on:
            self.compare_picker.setEnabled(self.compare_message_radio.isChecked())
            self.compare_run_combo.setEnabled(self.compare_run_radio.isChecked())
