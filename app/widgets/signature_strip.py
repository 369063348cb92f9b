"""A style signature (256 floats, L2-normalised) as a compact heat strip.

Cells run left to right, then top to bottom (`rows` rows); a diverging colour map (blue
negative, white zero, red positive) scaled to the largest absolute value of the shown
signature, so the strip shows its shape whatever its norm. Hovering a cell shows its
dimension and value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

_NEGATIVE = (33, 102, 172)
_POSITIVE = (178, 24, 43)
_ZERO = (247, 247, 247)


def diverging_color(value: float, scale: float) -> QColor:
    """Blue for negative, white for zero, red for positive; |value| >= scale is full colour."""
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    end = _POSITIVE if t >= 0 else _NEGATIVE
    a = abs(t)
    return QColor(*(round(z + (e - z) * a) for z, e in zip(_ZERO, end)))


class SignatureStrip(QWidget):
    def __init__(self, rows: int = 4, parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("glossary", "style signature")  # painted words: their meanings go in the tooltip
        self.rows = rows
        self._values: list[float] = []
        self._scale = 1.0
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(192)

    def set_signature(self, values: Sequence[float] | None) -> None:
        self._values = [float(v) for v in values] if values is not None else []
        self._scale = max((abs(v) for v in self._values), default=1.0) or 1.0
        if self._values:
            self.setToolTip(
                f"{len(self._values)}-d style signature; colour scale ±{self._scale:.3f} (hover a cell for its value)"
            )
        self.update()

    def values(self) -> list[float]:
        return list(self._values)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(384, self.rows * 12 + 2)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(192, self.rows * 12 + 2)

    def _columns(self) -> int:
        return max(1, math.ceil(len(self._values) / self.rows)) if self._values else 64

    def _cell_size(self) -> tuple[float, float]:
        return (self.width() - 2) / self._columns(), (self.height() - 2) / self.rows

    def index_at(self, x: float, y: float) -> int | None:
        if not self._values:
            return None
        width, height = self._cell_size()
        column, row = int((x - 1) // width), int((y - 1) // height)
        index = row * self._columns() + column
        if 0 <= column < self._columns() and 0 <= row < self.rows and index < len(self._values):
            return index
        return None

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt's name
        index = self.index_at(event.position().x(), event.position().y())
        if index is not None:
            QToolTip.showText(event.globalPosition().toPoint(), f"dimension {index}: {self._values[index]:+.4f}", self)
        super().mouseMoveEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        if not self._values:
            painter.setPen(self.palette().color(self.foregroundRole()))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No signature yet")
            painter.end()
            return
        width, height = self._cell_size()
        columns = self._columns()
        for index, value in enumerate(self._values):
            row, column = divmod(index, columns)
            # Cells overlap by a fraction of a pixel so no seams show between them.
            painter.fillRect(
                QRectF(1 + column * width, 1 + row * height, width + 0.5, height + 0.5),
                diverging_color(value, self._scale),
            )
        painter.end()
