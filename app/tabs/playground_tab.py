"""The Playground tab: what the trained twin learned, for one message at a time.

Pick a Phase 2 run of the workspace (or any run folder), then a conversation and message
of the workspace or type a message (with optional context). The tab shows four panels:

- pattern probabilities (sorted bars with values, the data's labels beside them);
- the style signature (256-d heat strip), its stylometric readout (predicted vs measured)
  and a 2-D PCA map of the workspace's message signatures, coloured by role or
  conversation, with the current message highlighted and hover text;
- the plan steps, each with the nearest real workspace messages by cosine;
- the trajectory (5 coordinates + phase) as sliders that re-run the analysis.

Compare puts two messages (or one message under two runs) side by side with the cosine of
their signatures. Export writes the view as PNG and the numbers as JSON.

All model work runs through `PlaygroundController` (a `BackgroundJob`, off the GUI thread):
the first load shows progress; later analyses reuse the loaded model and cached features.
Typed text is analysed as you type, debounced.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.tabs.playground_blind import BlindTestPanel
from app.tabs.playground_chat import ChatPanel
from app.tabs.playground_controller import (
    AnalysisRequest,
    PlaygroundController,
    RunChoice,
    describe_source,
    model_runs,
    parse_context,
    preferred_run,
    result_numbers,
)
from app.tabs.playground_picker import MessagePicker
from app.widgets.analysis_panel import AnalysisPanel
from app.widgets.message_label import MessageLabel
from app.widgets.pattern_bars import PatternBars
from app.widgets.plan_steps_view import PlanStepsView
from app.widgets.signature_strip import SignatureStrip
from app.widgets.stylometric_readout import StylometricReadout
from app.widgets.trajectory_sliders import TrajectorySliders
from cognitivetwin_core.atomic_files import write_json_atomically, write_via_path_atomically
from cognitivetwin_core.conversation import ROLES

log = logging.getLogger(__name__)

TYPING_DEBOUNCE_MS = 400
SLIDER_DEBOUNCE_MS = 120
LAST_RUN_SETTING = "playground/last_run"  # the run last looked at, opened again after a restart


def _group(title: str, widget: QWidget, tooltip: str = "") -> QGroupBox:
    # Short titles: a group's title sets its least width, and the tab must fit 1000 pixels.
    box = QGroupBox(title)
    box.setToolTip(tooltip)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 6, 6, 6)
    layout.addWidget(widget)
    return box


class PlaygroundTab(QWidget):
    """Signals for tests and the window: `runLoaded(run_dir)` when a run is ready,
    `analysisShown(slot)` when a result ("main" or "compare") is on screen,
    `exported(png_path, json_path)`."""

    runLoaded = Signal(str)
    analysisShown = Signal(str)
    exported = Signal(str, str)
    togetherJobLaunched = Signal(str)  # a Teach job on Together: the window has Phase 1 follow it

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.runs: list[RunChoice] = []
        self.main_result = None
        self.compare_result = None
        self.map_run_dir: str | None = None
        self.compare_cosine: float | None = None
        self._load_when_shown = False
        self._slider_key: tuple | None = None  # the message the sliders were set for
        self._serial = 0
        self._wanted = {"main": 0, "compare": 0}
        self.controller = PlaygroundController(self)
        self.controller.progress.connect(self._on_progress)
        self.controller.runLoaded.connect(self._on_run_loaded)
        self.controller.resultReady.connect(self._on_result)
        self.controller.failed.connect(self._on_failed)
        self.controller.busyChanged.connect(self._on_busy)
        self._build()

    # ----- building ------------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)

        top = QHBoxLayout()
        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(28)  # the top row fits a 1000-pixel window
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setToolTip("A finished (or stopped) Phase 2 run of this workspace")
        self.open_run_button = QPushButton("Open run folder…")
        self.refresh_runs_button = QPushButton("Refresh")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.hide()
        self.progress_label = QLabel("")
        self.progress_label.setProperty("role", "hint")
        # Two lines at most instead of one long one: on one line it widened the tab past a
        # 1000-pixel window while the run loaded.
        self.progress_label.setWordWrap(True)
        self.progress_label.setMinimumWidth(120)
        self.export_button = QPushButton("Export view…")
        self.export_button.setToolTip("Save this view as a PNG and its numbers as JSON")
        self.export_button.setEnabled(False)
        top.addWidget(QLabel("Phase 2 run:"))
        top.addWidget(self.run_combo, 1)
        top.addWidget(self.open_run_button)
        top.addWidget(self.refresh_runs_button)
        top.addWidget(self.progress_bar)
        top.addWidget(self.progress_label, 1)
        top.addWidget(self.export_button)
        outer.addLayout(top)
        self.message = MessageLabel()
        outer.addWidget(self.message)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_inputs())
        splitter.addWidget(self._build_results())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        outer.addWidget(splitter, 1)

        self.run_combo.currentIndexChanged.connect(self._run_changed)
        self.open_run_button.clicked.connect(self._open_run_folder)
        self.refresh_runs_button.clicked.connect(self.refresh_runs)
        self.export_button.clicked.connect(self._export_clicked)
        self._typing_timer = QTimer(self, singleShot=True, interval=TYPING_DEBOUNCE_MS)
        self._typing_timer.timeout.connect(self.analyze_now)
        self._slider_timer = QTimer(self, singleShot=True, interval=SLIDER_DEBOUNCE_MS)
        self._slider_timer.timeout.connect(self.analyze_now)

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
            _group(
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

    def _build_results(self) -> QWidget:
        self.result_tabs = QTabWidget()
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(2, 2, 2, 2)
        self.source_label = QLabel("Choose a run and a message, or type one.")
        self.source_label.setWordWrap(True)
        self.source_label.setTextFormat(Qt.TextFormat.PlainText)
        grid.addWidget(self.source_label, 0, 0, 1, 2)

        self.pattern_bars = PatternBars()
        grid.addWidget(_group("Pattern probabilities", self.pattern_bars), 1, 0)

        signature = QWidget()
        signature_layout = QVBoxLayout(signature)
        signature_layout.setContentsMargins(0, 0, 0, 0)
        self.signature_strip = SignatureStrip(rows=4)
        self.stylometric_readout = StylometricReadout()
        signature_layout.addWidget(self.signature_strip)
        signature_layout.addWidget(self.stylometric_readout)
        grid.addWidget(_group("Style signature", signature, "The style signature and its stylometric readout."), 1, 1)

        map_box = QWidget()
        map_layout = QVBoxLayout(map_box)
        map_layout.setContentsMargins(0, 0, 0, 0)
        color_row = QHBoxLayout()
        self.map_color_combo = QComboBox()
        self.map_color_combo.addItem("Colour by who wrote it (you, them)", "role")
        self.map_color_combo.addItem("Colour by conversation", "conversation")
        self.map_color_combo.currentIndexChanged.connect(self._map_color_changed)
        self.map_status = QLabel("")
        self.map_status.setProperty("role", "hint")
        color_row.addWidget(self.map_color_combo)
        color_row.addWidget(self.map_status, 1)
        map_layout.addLayout(color_row)
        # The map (pyqtgraph, numpy) is built when the tab is first shown, not at start-up.
        self.style_map = None
        self._map_layout = map_layout
        grid.addWidget(_group("Style map", map_box, "A PCA map of the workspace's message signatures."), 2, 0)

        self.plan_steps = PlanStepsView()
        self.plan_steps.messageActivated.connect(self._show_message)
        grid.addWidget(_group("Plan steps", self.plan_steps, "Plan steps: the nearest workspace messages."), 2, 1)
        grid.setRowStretch(2, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        self.result_tabs.addTab(page, "Analysis")

        compare_page = QWidget()
        compare_layout = QVBoxLayout(compare_page)
        self.cosine_label = QLabel("Tick “Compare with…” and choose a second message or run.")
        font = self.cosine_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.cosine_label.setFont(font)
        compare_layout.addWidget(self.cosine_label)
        columns = QHBoxLayout()
        self.compare_panel_a = AnalysisPanel("A")
        self.compare_panel_b = AnalysisPanel("B")
        columns.addWidget(self.compare_panel_a, 1)
        columns.addWidget(self.compare_panel_b, 1)
        compare_layout.addLayout(columns, 1)
        self.result_tabs.addTab(compare_page, "Compare")
        # Talk to the twin (Phase 1 adapter), scored by the run chosen above.
        self.chat_panel = ChatPanel()
        self.chat_panel.teach.togetherLaunched.connect(self.togetherJobLaunched)
        self.result_tabs.addTab(self.chat_panel, "Chat")
        self.blind_panel = BlindTestPanel()
        self.result_tabs.addTab(self.blind_panel, "Blind test")
        return self.result_tabs

    # ----- window hooks ----------------------------------------------------------------------

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.picker.set_workspace(workspace)
        self.compare_picker.set_workspace(workspace)
        self.chat_panel.set_workspace(workspace)
        self.blind_panel.set_workspace(workspace)
        self.refresh_runs()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._ensure_style_map()
        if self.workspace is not None and not event.spontaneous():
            self.refresh_runs()  # a Phase 2 run may have finished since the tab was last shown
            if not self.chat_panel.is_busy():
                self.chat_panel.refresh_adapters()  # and a Phase 1 adapter too
                self.blind_panel.refresh_adapters()  # or an evaluation
        if self._load_when_shown:
            self._load_when_shown = False
            QTimer.singleShot(0, self._run_changed)

    def shutdown(self) -> None:
        self._typing_timer.stop()
        self._slider_timer.stop()
        self.chat_panel.shutdown()
        self.controller.shutdown()

    # ----- runs ---------------------------------------------------------------------------------

    def refresh_runs(self) -> None:
        current = self.run_combo.currentData()
        self.runs = model_runs(self.workspace) if self.workspace is not None else []
        extra = [self.run_combo.itemData(i) for i in range(self.run_combo.count())]
        # Folders the user opened by hand stay in the list.
        for choice in extra:
            if isinstance(choice, RunChoice) and choice.opened_by_hand and choice not in self.runs:
                self.runs.append(choice)
        for combo in (self.run_combo, self.compare_run_combo):
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for choice in self.runs:
                combo.addItem(choice.label, choice)
                combo.setItemData(combo.count() - 1, str(choice.run_dir), Qt.ItemDataRole.ToolTipRole)
            index = next((i for i, c in enumerate(self.runs) if keep is not None and c.run_dir == keep.run_dir), -1)
            if index < 0 and combo is self.run_combo:
                index = self._last_viewed_index()  # the run the person looked at before a restart
            combo.setCurrentIndex(index if index >= 0 else (preferred_run(self.runs) if self.runs else -1))
            combo.blockSignals(False)
        if not self.runs:
            self.message.show_info(
                "There is no finished Phase 2 run in this workspace yet: train one in the Phase 2 tab "
                "(or open a run folder), then come back here."
            )
        elif self.message.kind == "info":
            self.message.clear_message()
        if (
            self.compare_run_combo.currentIndex() == self.run_combo.currentIndex()
            and self.compare_run_combo.count() > 1
        ):
            self.compare_run_combo.setCurrentIndex(1 if self.run_combo.currentIndex() == 0 else 0)
        new = self.run_combo.currentData()
        if new is not None and (current is None or new.run_dir != current.run_dir):
            self._run_changed()

    def add_run_folder(self, folder: str | Path) -> bool:
        """Add a run folder (Open run folder…); False, with a message, when it holds no model."""
        from cognitivetwin_core.errors import CognitiveTwinError

        try:
            choice = RunChoice.from_folder(folder)
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
            return False
        existing = next((i for i, c in enumerate(self.runs) if c.run_dir == choice.run_dir), -1)
        if existing < 0:
            self.runs.append(choice)
            for combo in (self.run_combo, self.compare_run_combo):
                combo.addItem(choice.label, choice)
            existing = len(self.runs) - 1
        self.run_combo.setCurrentIndex(existing)
        return True

    def _open_run_folder(self) -> None:
        start = str(self.workspace.runs_dir) if self.workspace is not None else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a Phase 2 run folder", start)
        if folder:
            self.add_run_folder(folder)

    def current_run(self) -> RunChoice | None:
        return self.run_combo.currentData()

    def _last_viewed_index(self) -> int:
        from app import settings

        last = settings.read(LAST_RUN_SETTING)
        return next((i for i, c in enumerate(self.runs) if last and str(c.run_dir) == str(last)), -1)

    def clear_results(self, text: str) -> None:
        """Empty every panel (the numbers of the run before must not pass for this one's)."""
        self.main_result = None
        self.compare_result = None
        self.source_label.setText(text)
        self.pattern_bars.clear()
        self.signature_strip.set_signature(None)
        self.stylometric_readout.clear()
        self.plan_steps.set_steps([])
        if self.style_map is not None:
            self.style_map.set_current(None)
            self.style_map.set_compare(None)
        self.export_button.setEnabled(False)

    def _run_changed(self, *_args) -> None:
        choice = self.current_run()
        self.chat_panel.set_phase2_run(choice.run_dir if choice is not None else None)
        if choice is None:
            return
        from app import settings

        settings.write(LAST_RUN_SETTING, str(choice.run_dir))
        if not self.isVisible():
            # Loading a model costs seconds and memory: only once the user opens the tab.
            self._load_when_shown = True
            return
        self.clear_results(f"Loading {choice.label}…")
        self.message.clear_message()
        self.controller.load_run(choice.run_dir, self.workspace.path if self.workspace is not None else None)
        self.analyze_now()

    def _on_run_loaded(self, loaded) -> None:
        choice = self.current_run()
        if choice is not None and loaded.run_dir == choice.run_dir:
            self.map_run_dir = str(loaded.run_dir)
            self._ensure_style_map()
            self.style_map.set_points(loaded.map_signatures, loaded.map_points)
            self.style_map.set_color_by(self.map_color_combo.currentData())
            count = len(loaded.map_points)
            self.map_status.setText(f"{count:,} messages{' (a sample)' if loaded.map_sampled else ''}")
            if self.main_result is not None:
                self._mark_map()
        self.runLoaded.emit(str(loaded.run_dir))

    # ----- requests -------------------------------------------------------------------------------

    def _message_chosen(self, conversation_id: str, turn_index: int) -> None:
        if self.input_tabs.currentIndex() != 0:
            self.input_tabs.setCurrentIndex(0)  # analyses through currentChanged
        else:
            self.analyze_now()

    def _show_message(self, conversation_id: str, turn_index: int) -> None:
        """Jump to a workspace message (a plan-step neighbour or a map point)."""
        self.input_tabs.setCurrentIndex(0)
        self.picker.select(conversation_id, turn_index)

    def _ensure_style_map(self) -> None:
        if self.style_map is not None:
            return
        from app.widgets.style_map import StyleMap

        self.style_map = StyleMap()
        self.style_map.pointClicked.connect(self._map_point_clicked)
        self._map_layout.addWidget(self.style_map, 1)

    def _map_color_changed(self, *_args) -> None:
        if self.style_map is not None:
            self.style_map.set_color_by(self.map_color_combo.currentData())

    def _map_point_clicked(self, point) -> None:
        self._show_message(point.conversation_id, point.turn_index)

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

    # ----- results ----------------------------------------------------------------------------

    def _on_result(self, result) -> None:
        slot = result.request.slot
        if result.request.serial != self._wanted.get(slot):
            return  # a newer request for this slot is on its way
        if slot == "main":
            self.main_result = result
            self._show_main(result)
        else:
            self.compare_result = result
        self._show_compare()
        self.export_button.setEnabled(self.main_result is not None)
        self.analysisShown.emit(slot)

    def _who(self, request) -> str | None:
        """ "you" or "them" for the analysed message (the person is the workspace's twin speaker)."""
        if self.workspace is None:
            return None
        from cognitivetwin_core.data.twin_speaker import is_person

        person = self.workspace.twin_speaker()
        conversation = self.picker.conversation
        if request.source is not None and conversation is not None and conversation.id == request.source[0]:
            index = request.source[1]
            if 0 <= index < len(conversation.messages):
                return "you" if is_person(conversation.messages[index], person) else "them"
            return None
        if request.source is None:
            return "you" if request.role == person else "them"
        return None

    def _show_main(self, result) -> None:
        request, analysis = result.request, result.analysis
        who = self._who(request)
        self.source_label.setText(f"{describe_source(request, who=who)}  ·  analysed in {result.seconds * 1000:.0f} ms")
        self.pattern_bars.set_values(analysis.pattern_probabilities, analysis.pattern_labels, request.label_kind)
        self.signature_strip.set_signature(analysis.style_signature)
        self.stylometric_readout.set_values(analysis.stylometrics, analysis.measured_stylometrics)
        person = self.workspace.twin_speaker() if self.workspace is not None else None
        self.plan_steps.set_steps(result.plan_rows, current=request.source, person=person)
        self._mark_map()

    def _mark_map(self) -> None:
        result = self.main_result
        if result is None or self.style_map is None or self.map_run_dir != str(result.request.run_dir):
            return
        self.style_map.set_current(result.analysis.style_signature, "this message")
        compare = self.compare_result
        if compare is not None and self.compare_check.isChecked() and str(compare.request.run_dir) == self.map_run_dir:
            self.style_map.set_compare(compare.analysis.style_signature, "compared")
        else:
            self.style_map.set_compare(None)

    def _show_compare(self) -> None:
        a, b = self.main_result, self.compare_result
        for panel, result in ((self.compare_panel_a, a), (self.compare_panel_b, b)):
            if result is None:
                panel.clear()
                continue
            panel.show_result(
                describe_source(result.request, with_run=True, who=self._who(result.request)),
                result.analysis.pattern_probabilities,
                result.analysis.pattern_labels,
                result.request.label_kind,
                result.analysis.style_signature,
                result.analysis.stylometrics,
                result.analysis.measured_stylometrics,
            )
        if a is not None and b is not None and self.compare_check.isChecked():
            self.compare_cosine = a.analysis.cosine(b.analysis)
            self.cosine_label.setText(f"How alike A and B are written: closeness {self.compare_cosine:.4f} (-1 to 1)")
        else:
            self.compare_cosine = None
        self._mark_map()

    def _on_progress(self, text: str, fraction) -> None:
        self.progress_label.setText(text)
        if fraction is None:
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * max(0.0, min(1.0, fraction))))

    def _on_busy(self, busy: bool) -> None:
        self.progress_bar.setVisible(busy)
        if not busy:
            self.progress_label.setText("")

    def _on_failed(self, text: str) -> None:
        self.message.show_error(text)

    # ----- export ---------------------------------------------------------------------------------

    def _export_clicked(self) -> None:
        start = str(self.workspace.path / "playground.png") if self.workspace is not None else "playground.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export the view", start, "PNG image (*.png)")
        if path:
            self.export_view(path)

    def export_view(self, png_path: str | Path) -> tuple[Path, Path]:
        """Save the tab as PNG at `png_path` and the numbers next to it as .json."""
        png_path = Path(png_path)
        if png_path.suffix.lower() != ".png":
            png_path = png_path.with_suffix(".png")
        json_path = png_path.with_suffix(".json")
        numbers = {
            "main": result_numbers(self.main_result) if self.main_result is not None else None,
            "compare": result_numbers(self.compare_result)
            if self.compare_result is not None and self.compare_check.isChecked()
            else None,
            "signature_cosine": self.compare_cosine if self.compare_check.isChecked() else None,
        }
        try:
            image = self.grab()

            def save_png(temporary: Path) -> None:
                if not image.save(str(temporary), "PNG"):
                    raise OSError(f"could not write {temporary}")

            write_via_path_atomically(png_path, save_png)
            write_json_atomically(json_path, numbers)
        except OSError as exc:
            self.message.show_error(f"Could not export to {png_path.parent}: {exc}. Choose another folder.")
            raise
        self.message.show_ok(f"Exported the view to {png_path} and its numbers to {json_path.name}.")
        self.exported.emit(str(png_path), str(json_path))
        return png_path, json_path
