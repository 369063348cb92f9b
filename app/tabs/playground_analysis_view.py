"""The Playground tab's analysis view: pattern probabilities, the style signature with its readout
and the 2-D map of the workspace's signatures, the plan steps with their nearest messages, and
Compare side by side with the cosine of the signatures (see playground_tab.py).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

from app.tabs.playground_blind import BlindTestPanel
from app.tabs.playground_chat import ChatPanel
from app.tabs.playground_controller import describe_source
from app.widgets.analysis_panel import AnalysisPanel
from app.widgets.pattern_bars import PatternBars
from app.widgets.plan_steps_view import PlanStepsView
from app.widgets.signature_strip import SignatureStrip
from app.widgets.stylometric_readout import StylometricReadout


def titled_group(title: str, widget: QWidget, tooltip: str = "") -> QGroupBox:
    # Short titles: a group's title sets its least width, and the tab must fit 1000 pixels.
    box = QGroupBox(title)
    box.setToolTip(tooltip)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 6, 6, 6)
    layout.addWidget(widget)
    return box


class PlaygroundAnalysisView:
    """The analysis view: patterns, style signature and map, plan steps, and Compare, filled from
    the controller's results."""

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
        grid.addWidget(titled_group("Pattern probabilities", self.pattern_bars), 1, 0)

        signature = QWidget()
        signature_layout = QVBoxLayout(signature)
        signature_layout.setContentsMargins(0, 0, 0, 0)
        self.signature_strip = SignatureStrip(rows=4)
        self.stylometric_readout = StylometricReadout()
        signature_layout.addWidget(self.signature_strip)
        signature_layout.addWidget(self.stylometric_readout)
        grid.addWidget(
            titled_group("Style signature", signature, "The style signature and its stylometric readout."), 1, 1
        )

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
        grid.addWidget(titled_group("Style map", map_box, "A PCA map of the workspace's message signatures."), 2, 0)

        self.plan_steps = PlanStepsView()
        self.plan_steps.messageActivated.connect(self._show_message)
        grid.addWidget(titled_group("Plan steps", self.plan_steps, "Plan steps: the nearest workspace messages."), 2, 1)
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
