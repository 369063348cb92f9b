"""A pyqtgraph plot of several named series that grow while a run trains.

Follows qt-notes "Plotting": every series keeps its points in preallocated float64 buffers
that grow by doubling, pens are 1 px without antialiasing, curves use peak downsampling,
and the curves are redrawn by a timer only when points arrived (never once per point; the
timer stops while nothing arrives or while the plot is hidden): at 10 Hz, or less often
where a redraw is slow, so that drawing takes at most a tenth of the GUI thread. A series may show a faint raw line under an
exponentially smoothed one (loss curves), and may be dashed (baselines) or carry a symbol
per point (per-epoch metrics, where there are few points). pyqtgraph is imported when the
widget is built, not when the module is.

    plot = LivePlot(x_label="step", y_label="loss")
    plot.add_series("total", (33, 60, 170), smooth=True)
    plot.append("total", step, loss)       # cheap: no drawing here
    plot.set_points("baseline", xs, ys)    # replace a whole series (comparisons)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

REDRAW_INTERVAL_MS = 100  # 10 Hz at most
MAX_REDRAW_INTERVAL_MS = 2000
# A redraw (setData, then the repaint it causes) may take at most this share of the GUI
# thread: where painting is slow (a busy CPU, a training thread contending for the GIL) the
# plot redraws less often instead of stalling the event loop.
MAX_DRAWING_SHARE = 0.1
SMOOTHING = 0.9  # exponential moving average: weight of the past
INITIAL_CAPACITY = 256


@dataclass
class SeriesBuffer:
    """Points of one series: x, raw y and the smoothed y, in growing float64 arrays."""

    smoothing: float | None = None
    x: np.ndarray = field(default_factory=lambda: np.empty(INITIAL_CAPACITY, dtype=np.float64))
    y: np.ndarray = field(default_factory=lambda: np.empty(INITIAL_CAPACITY, dtype=np.float64))
    smoothed: np.ndarray = field(default_factory=lambda: np.empty(INITIAL_CAPACITY, dtype=np.float64))
    count: int = 0

    def append(self, x: float, y: float) -> None:
        if self.count == len(self.x):
            size = 2 * len(self.x)
            for name in ("x", "y", "smoothed"):
                grown = np.empty(size, dtype=np.float64)
                grown[: self.count] = getattr(self, name)[: self.count]
                setattr(self, name, grown)
        n = self.count
        self.x[n] = x
        self.y[n] = y
        if self.smoothing is not None:
            # Bias-corrected EMA (as TensorBoard draws it) so the first points are not pulled to 0.
            previous = self.smoothed[n - 1] if n else 0.0
            raw_ema = self.smoothing * (previous * (1 - self.smoothing**n)) + (1 - self.smoothing) * y
            self.smoothed[n] = raw_ema / (1 - self.smoothing ** (n + 1))
        self.count = n + 1

    def replace(self, xs, ys) -> None:
        self.count = 0
        for x, y in zip(xs, ys):
            self.append(float(x), float(y))

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[: self.count].copy(), self.y[: self.count].copy()


class LivePlot(QWidget):
    def __init__(self, title: str = "", *, x_label: str = "step", y_label: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        import pyqtgraph as pg

        self._pg = pg
        self.plot_widget = _timed_plot_widget_class(pg)(title=title or None)
        self.plot_widget.setBackground("w")
        self.plot_widget.showGrid(x=False, y=False)
        self.plot_widget.setLabel("bottom", x_label)
        if y_label:
            self.plot_widget.setLabel("left", y_label)
        self.plot_widget.addLegend(offset=(-10, 10), labelTextSize="8pt", brush=(255, 255, 255, 190))
        self.plot_widget.setMinimumHeight(150)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self._series: dict[str, SeriesBuffer] = {}
        self._curves: dict[str, tuple] = {}  # name -> (raw curve or None, main curve)
        self._dirty: set[str] = set()
        self.redraws = 0
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._redraw)

    # --- series -----------------------------------------------------------------------------

    def add_series(
        self,
        name: str,
        color,
        *,
        smooth: bool = False,
        dashed: bool = False,
        symbol: str | None = None,
        label: str | None = None,
    ) -> None:
        """Declare a series (before its first point). `smooth`: a faint raw line under a smoothed one."""
        if name in self._series:
            return
        pg = self._pg
        from PySide6.QtCore import Qt

        style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
        raw_curve = None
        if smooth:
            faint = pg.mkColor(color)
            faint.setAlpha(70)
            # The raw line is unnamed so the legend shows one entry per series.
            raw_curve = self.plot_widget.plot(pen=pg.mkPen(faint, width=1))
            raw_curve.setDownsampling(auto=True, method="peak")
        pen = pg.mkPen(color, width=1, style=style)
        kwargs = {"pen": pen, "name": label or name}
        if symbol:
            kwargs.update(symbol=symbol, symbolSize=6, symbolBrush=pg.mkBrush(color), symbolPen=None)
        main_curve = self.plot_widget.plot(**kwargs)
        main_curve.setDownsampling(auto=True, method="peak")
        self._series[name] = SeriesBuffer(smoothing=SMOOTHING if smooth else None)
        self._curves[name] = (raw_curve, main_curve)

    def has_series(self, name: str) -> bool:
        return name in self._series

    def series_names(self) -> list[str]:
        return list(self._series)

    def append(self, name: str, x: float, y: float | None) -> None:
        """Add one point (None or NaN is skipped); drawn by the next timer tick."""
        if y is None or not np.isfinite(y):
            return
        self._series[name].append(float(x), float(y))
        self._mark_dirty(name)

    def set_points(self, name: str, xs, ys) -> None:
        """Replace the whole series (a finished run's curve, a baseline)."""
        pairs = [(x, y) for x, y in zip(xs, ys) if y is not None and np.isfinite(y)]
        self._series[name].replace([p[0] for p in pairs], [p[1] for p in pairs])
        self._mark_dirty(name)

    def point_count(self, name: str | None = None) -> int:
        if name is not None:
            return self._series[name].count if name in self._series else 0
        return sum(series.count for series in self._series.values())

    def points(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self._series[name].points()

    def clear(self) -> None:
        """Remove every series and its curves."""
        for raw_curve, main_curve in self._curves.values():
            for curve in (raw_curve, main_curve):
                if curve is not None:
                    self.plot_widget.removeItem(curve)
        legend = self.plot_widget.plotItem.legend
        if legend is not None:
            legend.clear()
        self._series.clear()
        self._curves.clear()
        self._dirty.clear()

    def flush(self) -> None:
        """Draw what arrived now (before a screenshot or an assertion)."""
        self._redraw(force=True)

    # --- drawing ----------------------------------------------------------------------------

    def _mark_dirty(self, name: str) -> None:
        self._dirty.add(name)
        if not self._timer.isActive():
            self._timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._dirty and not self._timer.isActive():
            self._timer.start()

    def _redraw(self, force: bool = False) -> None:
        if not self._dirty or not (force or self.isVisible()):
            # Idle, or on a tab not in front: no wake-ups; showEvent draws what arrived.
            self._timer.stop()
            return
        started = time.perf_counter()
        for name in self._dirty:
            series = self._series.get(name)
            if series is None:
                continue
            n = series.count
            raw_curve, main_curve = self._curves[name]
            if raw_curve is not None:
                raw_curve.setData(series.x[:n], series.y[:n])
                main_curve.setData(series.x[:n], series.smoothed[:n])
            else:
                main_curve.setData(series.x[:n], series.y[:n])
        self._dirty.clear()
        self.redraws += 1
        # Paced by what drawing cost last time (setData now, the paint it caused before).
        cost_ms = (time.perf_counter() - started) * 1000 + self.plot_widget.last_paint_ms
        interval = min(MAX_REDRAW_INTERVAL_MS, max(REDRAW_INTERVAL_MS, int(cost_ms / MAX_DRAWING_SHARE)))
        if interval != self._timer.interval():
            self._timer.setInterval(interval)


_TIMED_CLASS = None


def _timed_plot_widget_class(pg):
    """pg.PlotWidget that remembers how long its last paint took (built once, on first use)."""
    global _TIMED_CLASS
    if _TIMED_CLASS is None:

        class TimedPlotWidget(pg.PlotWidget):
            last_paint_ms = 0.0

            def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
                started = time.perf_counter()
                super().paintEvent(event)
                self.last_paint_ms = (time.perf_counter() - started) * 1000

        _TIMED_CLASS = TimedPlotWidget
    return _TIMED_CLASS
