"""The 12 pattern probabilities of one message as a sorted horizontal bar chart.

Each row: the pattern's name, a bar, its probability as a number, and a mark when the data
labels the message with that pattern ("data": explicit labels in the imported file;
"rules": the weak labeler's), so a user sees at a glance where the twin agrees with the labels.
Painted directly (12 rows need no plot library) so it stays crisp in exported PNGs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

BAR_COLOR = "#4263eb"
LABELLED_COLOR = "#2b8a3e"
THRESHOLD = 0.5  # the decision threshold the trainer's F1 uses

_ROW_HEIGHT = 18
_NAME_WIDTH = 118
_VALUE_WIDTH = 44
_MARK_WIDTH = 52


class PatternBars(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("glossary", "patterns ✓ rules ✓ data")  # painted words: their meanings go in the tooltip
        self._rows: list[tuple[str, float, str]] = []  # (name, probability, label kind or "")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(_NAME_WIDTH + _VALUE_WIDTH + _MARK_WIDTH + 80)

    def set_values(
        self,
        probabilities: Mapping[str, float],
        labels: Iterable[str] = (),
        label_kind: str = "data",
    ) -> None:
        """Show `probabilities` sorted high to low; `labels` are the message's labelled patterns."""
        labelled = set(labels)
        self._rows = sorted(
            ((name, float(value), label_kind if name in labelled else "") for name, value in probabilities.items()),
            key=lambda row: (-row[1], row[0]),
        )
        self.setToolTip(
            "\n".join(
                f"{name}: {value:.3f}{f'  (labelled: {kind})' if kind else ''}" for name, value, kind in self._rows
            )
        )
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self._rows = []
        self.setToolTip("")
        self.update()

    def rows(self) -> list[tuple[str, float, str]]:
        """(name, probability, label kind or "") in display order, highest first."""
        return list(self._rows)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(360, _ROW_HEIGHT * max(12, len(self._rows)) + 4)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return self.sizeHint()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        text_color = self.palette().color(self.foregroundRole())
        if not self._rows:
            painter.setPen(text_color)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No message analysed yet")
            painter.end()
            return
        track = QColor(text_color)
        track.setAlpha(30)
        bar_left = _NAME_WIDTH
        bar_width = max(20.0, self.width() - _NAME_WIDTH - _VALUE_WIDTH - _MARK_WIDTH - 4)
        threshold_pen = QPen(QColor(text_color))
        threshold_pen.setStyle(Qt.PenStyle.DotLine)
        for row, (name, value, kind) in enumerate(self._rows):
            top = 2 + row * _ROW_HEIGHT
            painter.setPen(text_color)
            painter.drawText(
                QRectF(0, top, _NAME_WIDTH - 6, _ROW_HEIGHT),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                name,
            )
            bar = QRectF(bar_left, top + 3, bar_width, _ROW_HEIGHT - 6)
            painter.fillRect(bar, track)
            color = QColor(BAR_COLOR)
            if value < THRESHOLD:
                color.setAlpha(150)
            painter.fillRect(
                QRectF(bar.left(), bar.top(), bar.width() * min(1.0, max(0.0, value)), bar.height()), color
            )
            painter.setPen(threshold_pen)
            x = bar.left() + bar.width() * THRESHOLD
            painter.drawLine(int(x), int(bar.top()), int(x), int(bar.bottom()))
            painter.setPen(text_color)
            value_rect = QRectF(bar.right() + 4, top, _VALUE_WIDTH, _ROW_HEIGHT)
            painter.drawText(value_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{value:.3f}")
            if kind:
                painter.setPen(QColor(LABELLED_COLOR))
                mark_rect = QRectF(value_rect.right(), top, _MARK_WIDTH, _ROW_HEIGHT)
                painter.drawText(mark_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"✓ {kind}")
        painter.end()
