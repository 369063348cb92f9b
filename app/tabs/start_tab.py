"""The Start tab: the guided path from your conversations to your twin, as a checklist.

Four steps (bring your conversations → teach the base your voice → learn your style → meet
your twin), each with what it does in a sentence, where this workspace stands on it and one
button to the tab that does it. The state comes from the core
(`cognitivetwin_core.playground.journey.read_journey`); this tab only draws it, again each
time it is shown or the workspace changes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cognitivetwin_core.playground.journey import DONE, LATER, NEXT, RUNNING, Journey, JourneyStep, read_journey

STATE_MARKS = {DONE: "✓", NEXT: "→", RUNNING: "…", LATER: "○"}
STATE_WORDS = {DONE: "done", NEXT: "do this next", RUNNING: "in progress", LATER: "later"}


class _StepCard(QFrame):
    def __init__(self, number: int, on_open):
        super().__init__()
        self.setObjectName("journeyStep")
        self.key = ""
        grid = QGridLayout(self)
        grid.setContentsMargins(12, 10, 12, 10)
        grid.setHorizontalSpacing(12)
        self.mark = QLabel()
        self.mark.setObjectName("journeyMark")
        self.mark.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.mark.setFixedWidth(36)
        self.title = QLabel()
        self.title.setObjectName("journeyTitle")
        self.what = QLabel()
        self.what.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setObjectName("journeyStatus")
        self.button = QPushButton()
        self.button.setMinimumWidth(150)
        self.button.clicked.connect(lambda: on_open(self))
        self.number = number
        for label in (self.what, self.status):
            # Long sentences wrap instead of widening the window.
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        grid.addWidget(self.mark, 0, 0, 3, 1, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.title, 0, 1)
        grid.addWidget(self.what, 1, 1)
        grid.addWidget(self.status, 2, 1)
        grid.addWidget(self.button, 0, 2, 3, 1, Qt.AlignmentFlag.AlignVCenter)
        grid.setColumnStretch(1, 1)
        self.step: JourneyStep | None = None

    def show_step(self, step: JourneyStep, is_current: bool) -> None:
        self.step = step
        self.key = step.key
        self.setProperty("state", step.state)
        self.setProperty("current", is_current)
        # The card's labels are styled by the card's state too: re-polish them as well.
        for widget in (self, self.mark, self.title, self.what, self.status):
            widget.style().unpolish(widget)
            widget.style().polish(widget)
        self.mark.setText(f"{STATE_MARKS[step.state]}\n{self.number}")
        self.mark.setToolTip(f"Step {self.number}: {STATE_WORDS[step.state]}")
        self.title.setText(f"{self.number}. {step.title}")
        self.what.setText(step.what)
        self.status.setText(step.status)
        self.button.setText(step.action)
        self.button.setDefault(is_current)
        # Every step's tab can be opened; the current one is the highlighted button.
        self.button.setProperty("current", is_current)
        self.button.style().unpolish(self.button)
        self.button.style().polish(self.button)


class StartTab(QWidget):
    """The guided path. `openTab(title)` asks the window to show a tab; `demoRequested` to
    load the demo conversations."""

    openTab = Signal(str)
    demoRequested = Signal()
    guideRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.journey: Journey | None = None

        intro = QLabel(
            "CognitiveTwin Studio learns how you write and think from your own conversations, "
            "in four steps. Each step below says where you are; the highlighted button takes you "
            "to what comes next. Hover any word you don't know for its meaning, or open Help ▸ Guide."
        )
        intro.setWordWrap(True)
        intro.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.headline = QLabel()
        self.headline.setObjectName("journeyHeadline")
        self.headline.setWordWrap(True)

        self.cards = [_StepCard(number, self._open_card) for number in range(1, 5)]
        self.demo_button = QPushButton("Try it with the demo conversations")
        self.demo_button.setToolTip("Loads a small set of example conversations, so you can try every step now.")
        self.demo_button.clicked.connect(self.demoRequested)
        self.guide_button = QPushButton("Read the guide")
        self.guide_button.clicked.connect(self.guideRequested)
        extra = QHBoxLayout()
        extra.addWidget(self.demo_button)
        extra.addWidget(self.guide_button)
        extra.addStretch(1)

        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(18, 14, 18, 14)
        column.setSpacing(10)
        column.addWidget(self.headline)
        column.addWidget(intro)
        for card in self.cards:
            column.addWidget(card)
        column.addLayout(extra)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.refresh()

    # --- the main window's hooks -------------------------------------------------------------

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.refresh()  # other tabs may have moved the person along meanwhile

    # --- drawing -----------------------------------------------------------------------------

    def refresh(self) -> Journey:
        journey = self.journey = read_journey(self.workspace)
        current = journey.current
        self.headline.setText(journey.headline if self.workspace is not None else "Opening your workspace…")
        for card, step in zip(self.cards, journey.steps):
            card.show_step(step, step is current)
        empty = self.workspace is not None and self.workspace.count_conversations() == 0
        self.demo_button.setVisible(empty)
        return journey

    def _open_card(self, card: _StepCard) -> None:
        if card.step is not None:
            self.openTab.emit(card.step.tab)

    def card(self, key: str) -> _StepCard:
        return next(card for card in self.cards if card.key == key)
