"""The 5 trajectory coordinates of one message as small labelled bars (values in [0, 1])."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.widgets.trajectory_style import COORDINATE_COLORS, COORDINATE_LABELS, COORDINATE_TERMS, GLOSSARY_WORDS

_LABEL_WIDTH = 104
_BAR_WIDTH = 90
_ROW_HEIGHT = 13


class CoordinateBars(QWidget):
    def __init__(self, coordinates, parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("glossary", GLOSSARY_WORDS)  # painted words: their meanings go in the tooltip
        self.coordinates = tuple(min(1.0, max(0.0, float(value))) for value in coordinates)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            "\n".join(
                f"{label} ({term}): {value:.2f}"
                for label, term, value in zip(COORDINATE_LABELS, COORDINATE_TERMS, self.coordinates)
            )
        )

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(_LABEL_WIDTH + _BAR_WIDTH + 36, _ROW_HEIGHT * len(self.coordinates) + 2)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        text_color = self.palette().color(self.foregroundRole())
        track = QColor(text_color)
        track.setAlpha(40)
        for row, (label, value, color) in enumerate(zip(COORDINATE_LABELS, self.coordinates, COORDINATE_COLORS)):
            top = 1 + row * _ROW_HEIGHT
            painter.setPen(text_color)
            painter.drawText(
                QRectF(0, top, _LABEL_WIDTH - 4, _ROW_HEIGHT),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                label,
            )
            bar = QRectF(_LABEL_WIDTH, top + 3, _BAR_WIDTH, _ROW_HEIGHT - 6)
            painter.fillRect(bar, track)
            painter.fillRect(QRectF(bar.left(), bar.top(), bar.width() * value, bar.height()), QColor(color))
            painter.drawText(
                QRectF(_LABEL_WIDTH + _BAR_WIDTH + 4, top, 32, _ROW_HEIGHT),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{value:.2f}",
            )
        painter.end()
