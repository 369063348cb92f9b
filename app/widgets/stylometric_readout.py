"""The style signature's stylometric readout: what its regression axes predict, per feature.

Each row shows the predicted value (bar) and, when known, the value measured on the text
itself (a tick), both in [0, 1], so a user sees which axes the signature reads correctly.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

PREDICTED_COLOR = "#0ca678"
MEASURED_COLOR = "#e8590c"

_ROW_HEIGHT = 15
_NAME_WIDTH = 128
_VALUE_WIDTH = 86


def readable(name: str) -> str:
    return name.replace("_", " ")


class StylometricReadout(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._predicted: dict[str, float] = {}
        self._measured: dict[str, float] = {}
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(_NAME_WIDTH + _VALUE_WIDTH + 60)

    def set_values(self, predicted: Mapping[str, float], measured: Mapping[str, float] | None = None) -> None:
        self._predicted = {name: float(value) for name, value in predicted.items()}
        self._measured = {name: float(value) for name, value in (measured or {}).items()}
        self.setToolTip(
            "Bars: what the signature predicts; ticks: measured on the text.\n"
            + "\n".join(
                f"{readable(name)}: predicted {value:.2f}"
                + (f", measured {self._measured[name]:.2f}" if name in self._measured else "")
                for name, value in self._predicted.items()
            )
        )
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self._predicted, self._measured = {}, {}
        self.update()

    def predicted(self) -> dict[str, float]:
        return dict(self._predicted)

    def measured(self) -> dict[str, float]:
        return dict(self._measured)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(340, _ROW_HEIGHT * max(12, len(self._predicted)) + 18)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return self.sizeHint()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        text_color = self.palette().color(self.foregroundRole())
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.9))
        painter.setFont(font)
        if not self._predicted:
            painter.setPen(text_color)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No readout yet")
            painter.end()
            return
        track = QColor(text_color)
        track.setAlpha(30)
        bar_width = max(20.0, self.width() - _NAME_WIDTH - _VALUE_WIDTH - 4)
        tick_pen = QPen(QColor(MEASURED_COLOR), 2)
        for row, (name, value) in enumerate(self._predicted.items()):
            top = row * _ROW_HEIGHT
            painter.setPen(text_color)
            painter.drawText(
                QRectF(0, top, _NAME_WIDTH - 6, _ROW_HEIGHT),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                readable(name),
            )
            bar = QRectF(_NAME_WIDTH, top + 3, bar_width, _ROW_HEIGHT - 6)
            painter.fillRect(bar, track)
            painter.fillRect(
                QRectF(bar.left(), bar.top(), bar.width() * min(1.0, max(0.0, value)), bar.height()),
                QColor(PREDICTED_COLOR),
            )
            text = f"{value:.2f}"
            if name in self._measured:
                measured = min(1.0, max(0.0, self._measured[name]))
                x = bar.left() + bar.width() * measured
                painter.setPen(tick_pen)
                painter.drawLine(int(x), int(bar.top() - 2), int(x), int(bar.bottom() + 2))
                text += f" / {self._measured[name]:.2f}"
            painter.setPen(text_color)
            painter.drawText(
                QRectF(bar.right() + 4, top, _VALUE_WIDTH, _ROW_HEIGHT),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                text,
            )
        legend_top = len(self._predicted) * _ROW_HEIGHT + 2
        painter.fillRect(QRectF(_NAME_WIDTH, legend_top + 4, 10, 8), QColor(PREDICTED_COLOR))
        painter.drawText(QRectF(_NAME_WIDTH + 14, legend_top, 90, 16), Qt.AlignmentFlag.AlignVCenter, "predicted")
        painter.setPen(tick_pen)
        painter.drawLine(_NAME_WIDTH + 100, legend_top + 3, _NAME_WIDTH + 100, legend_top + 13)
        painter.setPen(text_color)
        painter.drawText(
            QRectF(_NAME_WIDTH + 106, legend_top, 120, 16), Qt.AlignmentFlag.AlignVCenter, "measured on the text"
        )
        painter.end()
