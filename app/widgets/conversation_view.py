"""One conversation: each message with its role, text and trajectory annotation (the 5
coordinates as small bars, the phase as a coloured tag, the patterns as chips), under a
small plot of the 5 coordinates along the conversation.

Message cards are built a batch at a time ("Show more"), so a conversation of thousands
of messages opens instantly. pyqtgraph is imported when the first plot is drawn, not at
start-up.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.widgets.coordinate_bars import CoordinateBars
from app.widgets.flow_layout import FlowLayout
from app.widgets.trajectory_style import (
    COORDINATE_COLORS,
    COORDINATE_LABELS,
    GLOSSARY_WORDS,
    phase_color,
    phase_label,
)

CARDS_PER_BATCH = 100
MAX_TEXT_CHARS = 4000


def _chip(text: str, role: str = "chip", color: str | None = None) -> QLabel:
    label = QLabel(text)
    label.setProperty("role", role)
    if color:
        label.setStyleSheet(f"background: {color};")
    return label


class MessageCard(QFrame):
    def __init__(self, index: int, message, annotation, parent: QWidget | None = None, *, twin_speaker=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        from cognitivetwin_core.data.twin_speaker import is_person

        # The person's own messages (what the twin learns) are marked "you", with a bar.
        self.is_you = twin_speaker is not None and is_person(message, twin_speaker)
        if self.is_you:
            self.setObjectName("yourMessage")
            self.setStyleSheet("#yourMessage { border-left: 3px solid #2a7ab0; }")
        outer = QHBoxLayout(self)
        left = QVBoxLayout()
        header = FlowLayout()
        from html import escape

        # Messenger messages show who wrote them (their role is only a placeholder).
        if getattr(message, "speaker", None):
            who = escape(message.speaker) + (" (you)" if self.is_you else "")
        elif twin_speaker is not None:
            who = "you" if self.is_you else "them"
        else:
            who = message.role
        when = f" · {message.created_at:%Y-%m-%d %H:%M}" if getattr(message, "created_at", None) else ""
        role = QLabel(f"<b>{who}</b> · #{index + 1}{when}")
        header.addWidget(role)
        self.phase_tag = None
        self.chips: list[QLabel] = []
        if annotation is not None:
            self.phase_tag = _chip(phase_label(annotation.phase_id), "phase-tag", phase_color(annotation.phase_id))
            header.addWidget(self.phase_tag)
            for pattern in annotation.patterns:
                chip = _chip(pattern)
                self.chips.append(chip)
                header.addWidget(chip)
        left.addLayout(header)
        text = message.content
        if len(text) > MAX_TEXT_CHARS:
            text = text[:MAX_TEXT_CHARS] + f"\n… ({len(message.content) - MAX_TEXT_CHARS:,} more characters)"
        body = QLabel(text)
        body.setTextFormat(Qt.TextFormat.PlainText)
        body.setWordWrap(True)
        body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        body.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        body.setMinimumWidth(120)
        left.addWidget(body)
        outer.addLayout(left, 1)
        if annotation is not None:
            self.bars = CoordinateBars(annotation.coordinates)
            outer.addWidget(self.bars, 0, Qt.AlignmentFlag.AlignTop)


class ConversationView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.conversation = None
        self.twin_speaker: str | None = None
        self.annotations: list = []
        self.cards: list[MessageCard] = []
        self.plot_widget = None
        self._curves: list = []

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.header = QLabel("Select a conversation in the list to see its messages and their trajectory.")
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        self.plot_holder = QVBoxLayout()
        layout.addLayout(self.plot_holder)

        self.cards_host = QWidget()
        self.cards_layout = QVBoxLayout(self.cards_host)
        self.cards_layout.setContentsMargins(2, 2, 2, 2)
        self.more_button = QPushButton()
        self.more_button.clicked.connect(self._add_batch)
        self.more_button.hide()
        self.cards_layout.addWidget(self.more_button)
        self.cards_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        # Cards follow the view's width (texts wrap) instead of scrolling sideways.
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.cards_host)
        layout.addWidget(self.scroll, 1)

    def _ensure_plot(self) -> None:
        if self.plot_widget is not None:
            return
        import pyqtgraph as pg

        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setBackground(None)
        self.plot_widget.setProperty("glossary", GLOSSARY_WORDS)  # the legend's exact terms, in the tooltip
        self.plot_widget.setFixedHeight(170)
        self.plot_widget.setYRange(0, 1, padding=0.05)
        self.plot_widget.setMouseEnabled(x=True, y=False)
        self.plot_widget.getPlotItem().setLabel("bottom", "message")
        legend = self.plot_widget.addLegend(offset=(-4, 4), labelTextSize="7pt")
        legend.setColumnCount(5)
        for label, color in zip(COORDINATE_LABELS, COORDINATE_COLORS):
            # 1 px pens without antialiasing: the fast path (docs/qt.md, Plotting).
            curve = self.plot_widget.plot(
                pen=pg.mkPen(color, width=1), name=label, symbol="o", symbolSize=4, symbolBrush=color, symbolPen=None
            )
            self._curves.append(curve)
        self.plot_holder.addWidget(self.plot_widget)

    def clear(self) -> None:
        for card in self.cards:
            self.cards_layout.removeWidget(card)
            card.setParent(None)
            card.deleteLater()
        self.cards = []
        self.more_button.hide()
        self.twin_speaker = None
        self.conversation = None
        self.annotations = []

    def show_conversation(self, conversation, annotations, *, twin_speaker: str | None = None) -> None:
        """`twin_speaker`: the person, whose messages are marked "you" (the others "them")."""
        import numpy as np  # with pyqtgraph, only once a conversation is shown

        self.clear()
        self.twin_speaker = twin_speaker
        self.conversation = conversation
        self.annotations = list(annotations)
        count = len(conversation.messages)
        title = conversation.title or conversation.id
        self.header.setText(f"<b>{title}</b> · {conversation.source} · {count} message{'s' if count != 1 else ''}")
        self._ensure_plot()
        x = np.arange(1, count + 1, dtype=np.float64)
        for dimension, curve in enumerate(self._curves):
            y = np.array([a.coordinates[dimension] for a in self.annotations], dtype=np.float64)
            curve.setData(x[: len(y)], y)
        self.plot_widget.setXRange(1, max(2, count), padding=0.02)
        self._add_batch()
        self.scroll.verticalScrollBar().setValue(0)

    def _add_batch(self) -> None:
        if self.conversation is None:
            return
        messages = self.conversation.messages
        start = len(self.cards)
        stop = min(len(messages), start + CARDS_PER_BATCH)
        for index in range(start, stop):
            annotation = self.annotations[index] if index < len(self.annotations) else None
            card = MessageCard(index, messages[index], annotation, twin_speaker=self.twin_speaker)
            # Before the "Show more" button and the final stretch.
            self.cards_layout.insertWidget(self.cards_layout.count() - 2, card)
            self.cards.append(card)
        remaining = len(messages) - len(self.cards)
        self.more_button.setVisible(remaining > 0)
        self.more_button.setText(f"Show {min(remaining, CARDS_PER_BATCH)} more ({remaining} not shown)")
