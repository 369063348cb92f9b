"""The training loss of a local Phase 1 (LoRA) run, per step: raw (faint) and smoothed.

Follows qt-notes "Plotting": points go into preallocated float64 buffers that grow by
doubling, 1 px pens without antialiasing, peak downsampling, and the curves are redrawn by
a 20 Hz timer only when points arrived (never once per point). pyqtgraph is imported when
the widget is built, not when the module is.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

REDRAW_INTERVAL_MS = 50  # 20 Hz
SMOOTHING = 0.9  # exponential moving average weight of the past


class LoraLossPlot(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        import pyqtgraph as pg

        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setBackground("w")
        self.plot_widget.showGrid(x=True, y=True, alpha=0.2)
        self.plot_widget.setLabel("bottom", "step")
        self.plot_widget.setLabel("left", "loss (assistant tokens)")
        self.plot_widget.addLegend(offset=(-10, 10))
        self.raw_curve = self.plot_widget.plot(pen=pg.mkPen((66, 99, 235, 80), width=1), name="loss")
        self.smooth_curve = self.plot_widget.plot(pen=pg.mkPen((33, 60, 170), width=1), name="smoothed")
        for curve in (self.raw_curve, self.smooth_curve):
            curve.setDownsampling(auto=True, method="peak")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self._steps = np.empty(256, dtype=np.float64)
        self._raw = np.empty(256, dtype=np.float64)
        self._smooth = np.empty(256, dtype=np.float64)
        self._count = 0
        self._dirty = False
        self.redraws = 0
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._redraw)

    def count(self) -> int:
        return self._count

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        return self._steps[: self._count].copy(), self._raw[: self._count].copy()

    def clear(self) -> None:
        self._count = 0
        self._dirty = True
        self._redraw()

    def add_point(self, step: int, loss: float) -> None:
        if self._count == len(self._steps):
            size = 2 * len(self._steps)
            for name in ("_steps", "_raw", "_smooth"):
                grown = np.empty(size, dtype=np.float64)
                grown[: self._count] = getattr(self, name)[: self._count]
                setattr(self, name, grown)
        previous = self._smooth[self._count - 1] if self._count else loss
        self._steps[self._count] = step
        self._raw[self._count] = loss
        self._smooth[self._count] = SMOOTHING * previous + (1 - SMOOTHING) * loss if self._count else loss
        self._count += 1
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def _redraw(self) -> None:
        if not self._dirty:
            self._timer.stop()  # idle: no wake-ups while nothing arrives
            return
        self._dirty = False
        n = self._count
        self.raw_curve.setData(self._steps[:n], self._raw[:n])
        self.smooth_curve.setData(self._steps[:n], self._smooth[:n])
        self.redraws += 1

    def flush(self) -> None:
        """Draw what arrived now (before a screenshot)."""
        self._redraw()
