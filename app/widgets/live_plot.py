"""A pyqtgraph plot of several named series that grow while a run trains.

Drawing must never stall the window (docs/gui-responsiveness.md), so:
- every series keeps its points in preallocated float64 buffers that grow by doubling;
  appending never draws;
- a redraw hands pyqtgraph at most `MAX_DRAWN_POINTS` per curve (min/max per bucket, so
  spikes stay visible), with no finite check (NaN is never stored);
- the plot sets its own axis ranges, with headroom, only when the data leaves them (or
  fills a small part of them): pyqtgraph's autorange recomputed every curve's bounds and
  redrew both axes on every redraw. Zooming or panning by hand stops this until the
  plot's "A" (auto range) button is pressed;
- pens are 1 px, opaque (the faint raw line is a lighter colour, not a translucent one),
  without antialiasing; the legend has no background to blend;
- one queue for the whole window redraws ONE plot per tick, the one waiting longest, and
  only plots that got points and are visible: plots never draw in the same event-loop
  turn. Ticks are paced so that drawing takes at most `MAX_DRAWING_SHARE` of the GUI thread.
A series may show a faint raw line under an exponentially smoothed one (loss curves), and
may be dashed (baselines) or carry a symbol per point (per-epoch metrics, where there are
few points). pyqtgraph is imported when the widget is built, not when the module is.

    plot = LivePlot(x_label="step", y_label="loss")
    plot.add_series("total", (33, 60, 170), smooth=True)
    plot.append("total", step, loss)       # cheap: no drawing here
    plot.set_points("baseline", xs, ys)    # replace a whole series (comparisons)
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QTimer
from PySide6.QtWidgets import QGraphicsScene, QSizePolicy, QVBoxLayout, QWidget

REDRAW_INTERVAL_MS = 50  # the queue's tick: one plot per tick, so 3 plots each ~7 Hz at most
MAX_REDRAW_INTERVAL_MS = 2000
# A redraw (setData, then the repaint it causes) may take at most this share of the GUI
# thread: where painting is slow (a busy CPU) plots redraw less often instead of stalling.
MAX_DRAWING_SHARE = 0.05
MAX_DRAWN_POINTS = 600  # per curve: min and max of 300 buckets, a few pixel columns each
LEGEND_ROW = 4  # the plot item's grid: title 0, top axis 1, curves 2, x axis 3
LEGEND_SPACING_PX = 12  # between a legend entry's sample and its name, and between entries
LEGEND_MARGIN_PX = 60  # the y axis's width: the legend sits under the curves
RANGE_EDGE = 0.04  # share of the span kept clear at both ends of x, so end markers show whole
RANGE_HEADROOM = 0.25  # room given beyond the data when a range is set (fewer re-sets)
RANGE_MIN_FILL = 0.4  # the data filling less of a range than this: fit it again
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
    # Running bounds of x and of both y lines (the drawn ones), for the plot's ranges.
    bounds: list = field(default_factory=lambda: [np.inf, -np.inf, np.inf, -np.inf])

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
        b = self.bounds
        ys = (y, self.smoothed[n]) if self.smoothing is not None else (y,)
        b[0], b[1] = min(b[0], x), max(b[1], x)
        b[2], b[3] = min(b[2], *ys), max(b[3], *ys)

    def replace(self, xs, ys) -> None:
        self.count = 0
        self.bounds = [np.inf, -np.inf, np.inf, -np.inf]
        for x, y in zip(xs, ys):
            self.append(float(x), float(y))

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[: self.count].copy(), self.y[: self.count].copy()

    def drawn(self, values: np.ndarray, limit: int = MAX_DRAWN_POINTS) -> tuple[np.ndarray, np.ndarray]:
        """(x, values) with at most about `limit` points: each bucket's min and max, in order."""
        n = self.count
        if n <= limit:
            return self.x[:n], values[:n]
        size = -(-n // (limit // 2))  # points per bucket
        whole = n - n % size
        buckets = values[:whole].reshape(-1, size)
        low, high = buckets.min(axis=1), buckets.max(axis=1)
        starts = self.x[:whole:size]
        ends = self.x[size - 1 : whole : size]
        xs = np.concatenate([np.column_stack([starts, ends]).ravel(), self.x[whole:n]])
        # Keep the bucket's shape: whichever extreme came first is drawn first.
        first_low = buckets.argmin(axis=1) <= buckets.argmax(axis=1)
        pairs = np.where(first_low[:, None], np.column_stack([low, high]), np.column_stack([high, low]))
        return xs, np.concatenate([pairs.ravel(), values[whole:n]])


class LivePlot(QWidget):
    def __init__(self, title: str = "", *, x_label: str = "step", y_label: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        import pyqtgraph as pg

        self._pg = pg
        # Every x axis here counts steps or epochs: ticks at 0.5 or 2.5 epochs meant nothing.
        bottom_axis = _whole_number_axis_class(pg)(orientation="bottom")
        self.plot_widget = _timed_plot_widget_class(pg)(title=title or None, axisItems={"bottom": bottom_axis})
        self.plot_widget.setBackground("w")
        self.plot_widget.showGrid(x=False, y=False)
        self.plot_widget.setLabel("bottom", x_label)
        if y_label:
            self.plot_widget.setLabel("left", y_label)
        # The legend is a compact row under the x axis, outside the curves: drawn over them it
        # hid their ends and, with many series, was taller than the plot at the default window
        # size. No background: nothing to blend.
        plot_item = self.plot_widget.getPlotItem()
        legend = pg.LegendItem(offset=None, labelTextSize="8pt", horSpacing=LEGEND_SPACING_PX, verSpacing=-6)
        legend.layout.setContentsMargins(0, 0, 0, 0)
        legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)  # its rows' height, no more
        plot_item.layout.addItem(legend, LEGEND_ROW, 1)
        plot_item.legend = legend  # curves plotted with a name join it
        self.plot_widget.setMinimumHeight(150)
        # Curves change every redraw: a scene index (BSP tree) would be rebuilt each time.
        self.plot_widget.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self._view = self.plot_widget.getViewBox()
        self._view.disableAutoRange()  # ranges are set in _fit_ranges (see the module's docstring)
        self._view.sigRangeChangedManually.connect(self._stop_following)
        self._following = True
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self._series: dict[str, SeriesBuffer] = {}
        self._curves: dict[str, tuple] = {}  # name -> (raw curve or None, main curve)
        self._dirty: set[str] = set()
        self.redraws = 0

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
        in_legend: bool = True,
    ) -> None:
        """Declare a series (before its first point). `smooth`: a faint raw line under a smoothed one;
        `in_legend` False: unnamed (a baseline the plot's title explains), so the legend stays one row."""
        if name in self._series:
            return
        pg = self._pg
        from PySide6.QtCore import Qt

        style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
        raw_curve = None
        if smooth:
            # The raw line is unnamed so the legend shows one entry per series; its colour
            # is the series' mixed with the white background (opaque: no blending to paint).
            base = pg.mkColor(color)
            faint = pg.mkColor(*(round(255 - (255 - c) * FAINT_ALPHA) for c in base.getRgb()[:3]))
            raw_curve = self.plot_widget.plot(pen=pg.mkPen(faint, width=1), skipFiniteCheck=True)
        pen = pg.mkPen(color, width=1, style=style)
        kwargs = {"pen": pen, "name": (label or name) if in_legend else None, "skipFiniteCheck": True}
        if symbol:
            kwargs.update(symbol=symbol, symbolSize=6, symbolBrush=pg.mkBrush(color), symbolPen=None)
        main_curve = self.plot_widget.plot(**kwargs)
        self._series[name] = SeriesBuffer(smoothing=SMOOTHING if smooth else None)
        self._curves[name] = (raw_curve, main_curve)
        self._fit_legend()

    def _fit_legend(self) -> None:
        """As many legend entries side by side as the plot's width holds (a wider legend ran
        past the plot's edge)."""
        legend = self.plot_widget.plotItem.legend
        if legend is not None and legend.items:
            # An entry is two cells of the legend's grid (sample, name), each followed by the
            # spacing. The names' own text widths: their cells are stretched to the legend's columns.
            widest = max(
                sample.boundingRect().width() + text.item.boundingRect().width() for sample, text in legend.items
            )
            widest += 2 * LEGEND_SPACING_PX
            per_row = int((self.width() - LEGEND_MARGIN_PX) // widest)
            legend.setColumnCount(max(1, min(len(legend.items), per_row)))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_legend()

    def has_series(self, name: str) -> bool:
        return name in self._series

    def series_names(self) -> list[str]:
        return list(self._series)

    def append(self, name: str, x: float, y: float | None) -> None:
        """Add one point (None or NaN is skipped); drawn by a later tick of the redraw queue."""
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
        self._following = True

    def flush(self) -> None:
        """Draw what arrived now (before a screenshot or an assertion)."""
        self._redraw(force=True)

    def request_redraw(self) -> None:
        """Draw what arrived on a coming tick of the window's redraw queue (never now)."""
        if self._dirty:
            _redraw_queue().request(self)

    def redraw_pending(self) -> bool:
        """Points arrived that are not drawn yet."""
        return bool(self._dirty)

    # --- drawing ----------------------------------------------------------------------------

    def _mark_dirty(self, name: str) -> None:
        self._dirty.add(name)
        _redraw_queue().request(self)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if self._dirty:
            _redraw_queue().request(self)

    def _stop_following(self, *_args) -> None:
        self._following = False  # the user zoomed or panned: leave the ranges alone

    def _redraw(self, force: bool = False) -> float:
        """Hand the waiting series to pyqtgraph; the cost in ms (this, and the last paint)."""
        if not self._dirty or not (force or self.isVisible()):
            return 0.0
        started = time.perf_counter()
        for name in self._dirty:
            series = self._series.get(name)
            if series is None:
                continue
            raw_curve, main_curve = self._curves[name]
            if raw_curve is not None:
                raw_curve.setData(*series.drawn(series.y))
                main_curve.setData(*series.drawn(series.smoothed))
            else:
                main_curve.setData(*series.drawn(series.y))
        self._dirty.clear()
        self._fit_ranges()
        self.redraws += 1
        return (time.perf_counter() - started) * 1000 + self.plot_widget.last_paint_ms

    def _fit_ranges(self) -> None:
        view = self._view
        if any(view.state["autoRange"]):
            # The "A" button (auto range) was pressed: follow the data again, ourselves.
            view.disableAutoRange()
            self._following = True
        if not self._following:
            return
        bounds = [s.bounds for s in self._series.values() if s.count]
        if not bounds:
            return
        (x_now, y_now) = view.viewRange()
        x_range = _fitted(min(b[0] for b in bounds), max(b[1] for b in bounds), x_now, ahead_only=True)
        y_range = _fitted(min(b[2] for b in bounds), max(b[3] for b in bounds), y_now, ahead_only=False)
        if x_range is not None or y_range is not None:
            view.setRange(xRange=x_range or x_now, yRange=y_range or y_now, padding=0)


FAINT_ALPHA = 70 / 255  # how much of the series' colour its raw line keeps


def _fitted(low: float, high: float, current, *, ahead_only: bool):
    """A new (low, high) range for data in [low, high], or None when `current` still fits it.

    A range is set with headroom so that a growing series does not re-set it every redraw;
    it is fitted again when the data leaves it or fills less than RANGE_MIN_FILL of it.
    `ahead_only` (x, steps): the headroom is after the data only.
    """
    span = high - low
    if span <= 0:
        span = max(abs(high) * 0.1, 1.0) if ahead_only else max(abs(high) * 0.1, 1e-3)
    edge = span * RANGE_EDGE / 2  # a point on the border is drawn half outside: not inside
    inside = current[0] <= low - edge and high + edge <= current[1]
    if inside and span >= RANGE_MIN_FILL * (current[1] - current[0]):
        return None
    if ahead_only:
        return (low - span * RANGE_EDGE, low + span * (1 + RANGE_HEADROOM))
    margin = span * RANGE_HEADROOM / 2
    return (low - margin, high + margin)


class _RedrawQueue(QObject):
    """One per application: redraws one waiting, visible plot per tick, the longest waiting first."""

    def __init__(self, parent: QObject):
        super().__init__(parent)
        self._waiting: list = []  # weak references to plots, in order of arrival
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)

    def request(self, plot: LivePlot) -> None:
        if not any(ref() is plot for ref in self._waiting):
            self._waiting.append(weakref.ref(plot))
        if not self._timer.isActive():
            self._timer.start()

    def is_active(self) -> bool:
        return self._timer.isActive()

    def _tick(self) -> None:
        cost = 0.0
        while self._waiting:
            plot = self._waiting.pop(0)()
            if plot is None or not shiboken6.isValid(plot) or not plot.redraw_pending():
                continue
            if not plot.isVisible():
                continue  # hidden (a tab not in front): its showEvent asks again
            cost = plot._redraw()
            break
        if not self._waiting:
            self._timer.stop()
        # Paced by what drawing cost (setData now, the paint it caused before).
        interval = min(MAX_REDRAW_INTERVAL_MS, max(REDRAW_INTERVAL_MS, int(cost / MAX_DRAWING_SHARE)))
        if interval != self._timer.interval():
            self._timer.setInterval(interval)


_QUEUE: _RedrawQueue | None = None


def _redraw_queue() -> _RedrawQueue:
    global _QUEUE
    if _QUEUE is None or not shiboken6.isValid(_QUEUE):
        _QUEUE = _RedrawQueue(QCoreApplication.instance())
    return _QUEUE


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


_WHOLE_AXIS_CLASS = None


def _whole_number_axis_class(pg):
    """pg.AxisItem whose ticks fall on whole numbers only (built once, on first use)."""
    global _WHOLE_AXIS_CLASS
    if _WHOLE_AXIS_CLASS is None:

        class WholeNumberAxis(pg.AxisItem):
            def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph's names
                levels = [
                    (spacing, values) for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1
                ]
                if not levels:  # a span of a few units: one tick per whole number
                    low, high = math.ceil(min(minVal, maxVal)), math.floor(max(minVal, maxVal))
                    levels = [(1.0, [float(value) for value in range(low, high + 1)])]
                return levels

        _WHOLE_AXIS_CLASS = WholeNumberAxis
    return _WHOLE_AXIS_CLASS
