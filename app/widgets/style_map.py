"""A 2-D map (PCA) of the style signatures of the workspace's messages.

Points are coloured by role or by conversation; hovering a point shows its text, clicking
it selects that message. The message being analysed (and, while comparing, the second
one) is projected with the same PCA and drawn as a ring, so typed text lands among the
workspace's messages too. pyqtgraph is imported when the widget is built (not at import).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from cognitivetwin_core.playground.session import MapPoint  # noqa: F401 - the points it shows

# Coloured by who wrote it: the person ("you") and everyone else ("them").
SIDE_COLORS = {"you": "#2b8a3e", "them": "#1c7ed6"}
CURRENT_COLOR = "#000000"
PERSON_COLOR = "#2b8a3e"  # the ring around the person's own messages
COMPARE_COLOR = "#c2255c"
_HOVER_CHARS = 300


@dataclass(frozen=True)
class Projection:
    """A 2-D PCA basis: `project(x) = (x - mean) @ components.T`."""

    mean: np.ndarray  # [d]
    components: np.ndarray  # [2, d]
    explained: tuple[float, float]  # share of variance of each axis

    @classmethod
    def fit(cls, vectors: np.ndarray) -> Projection:
        vectors = np.asarray(vectors, dtype=np.float64)
        mean = vectors.mean(axis=0)
        centred = vectors - mean
        if len(vectors) < 2 or not np.any(centred):
            components = np.zeros((2, vectors.shape[1]))
            components[0, 0] = 1.0
            if vectors.shape[1] > 1:
                components[1, 1] = 1.0
            return cls(mean, components, (0.0, 0.0))
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        components = vt[:2] if len(vt) >= 2 else np.vstack([vt, np.zeros_like(vt)])
        # A deterministic sign: the largest loading of each axis is positive.
        signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
        components = components * np.where(signs == 0, 1.0, signs)[:, None]
        variance = singular**2
        total = float(variance.sum()) or 1.0
        explained = tuple(float(v / total) for v in variance[:2]) + (0.0,) * (2 - min(2, len(variance)))
        return cls(mean, components, explained[:2])

    def project(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        return (vectors - self.mean) @ self.components.T


def _side(point) -> str:
    return "you" if point.person else "them"


def _shorten(text: str, limit: int = _HOVER_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class StyleMap(QWidget):
    pointClicked = Signal(object)  # MapPoint

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("glossary", "PCA cosine")  # painted words: their meanings go in the tooltip
        import pyqtgraph as pg

        self._pg = pg
        self.points: list[MapPoint] = []
        self.xy = np.zeros((0, 2))
        self.projection: Projection | None = None
        self.color_by = "role"
        self.current_xy: np.ndarray | None = None
        self.compare_xy: np.ndarray | None = None
        self.plot = pg.PlotWidget()
        self.plot.setBackground(None)
        self.plot.setMinimumHeight(220)
        self.plot.getPlotItem().hideButtons()
        self.plot.getPlotItem().showGrid(x=True, y=True, alpha=0.15)
        for side in ("bottom", "left"):
            self.plot.getPlotItem().getAxis(side).enableAutoSIPrefix(False)  # no "(x0.001)" on PCA units
        self.legend = self.plot.getPlotItem().addLegend(offset=(6, 6), labelTextSize="8pt")
        self.scatter = pg.ScatterPlotItem(size=8, pxMode=True, hoverable=True, tip=self._tip, hoverSize=12)
        self.scatter.sigClicked.connect(self._clicked)
        self.current_marker = pg.ScatterPlotItem(
            size=20, symbol="o", pen=pg.mkPen(CURRENT_COLOR, width=2.5), brush=None, pxMode=True
        )
        self.compare_marker = pg.ScatterPlotItem(
            size=20, symbol="s", pen=pg.mkPen(COMPARE_COLOR, width=2.5), brush=None, pxMode=True
        )
        self.current_label = pg.TextItem(color=CURRENT_COLOR, anchor=(0, 1))
        self.compare_label = pg.TextItem(color=COMPARE_COLOR, anchor=(0, 1))
        for item in (self.scatter, self.current_marker, self.compare_marker, self.current_label, self.compare_label):
            self.plot.addItem(item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    # ----- data ---------------------------------------------------------------------------

    def set_points(self, signatures: np.ndarray, points: list[MapPoint]) -> None:
        """Fit the PCA on `signatures` (one row per point) and draw them."""
        signatures = np.asarray(signatures, dtype=np.float64)
        if len(signatures) != len(points):
            raise ValueError("one signature per point")
        self.points = list(points)
        if len(points):
            self.projection = Projection.fit(signatures)
            self.xy = self.projection.project(signatures)
        else:
            self.projection, self.xy = None, np.zeros((0, 2))
        explained = self.projection.explained if self.projection else (0.0, 0.0)
        # Plain axis names; "principal component" (PCA) is in the widget's glossary tooltip.
        self.plot.setLabel("bottom", f"main difference 1 ({explained[0]:.0%} of all)")
        self.plot.setLabel("left", f"main difference 2 ({explained[1]:.0%})")
        self._redraw_points()

    def set_color_by(self, mode: str) -> None:
        if mode not in ("role", "conversation"):
            raise ValueError(f"colour by 'role' or 'conversation', not {mode!r}")
        self.color_by = mode
        self._redraw_points()

    def project(self, signature) -> np.ndarray | None:
        if self.projection is None or signature is None:
            return None
        return self.projection.project(np.asarray(signature, dtype=np.float64))[0]

    def set_current(self, signature, label: str = "this message") -> None:
        self.current_xy = self._mark(self.current_marker, self.current_label, signature, label)

    def set_compare(self, signature, label: str = "compared") -> None:
        self.compare_xy = self._mark(self.compare_marker, self.compare_label, signature, label)

    def clear(self) -> None:
        self.set_points(np.zeros((0, 1)), [])
        self.set_current(None)
        self.set_compare(None)

    # ----- hover and click ----------------------------------------------------------------

    def hover_text(self, index: int) -> str:
        point = self.points[index]
        who = "you" if point.person else "them"
        return f"{point.conversation_id}, message {point.turn_index + 1} ({who})\n{_shorten(point.text)}"

    def _tip(self, x, y, data) -> str:
        return self.hover_text(int(data)) if data is not None and 0 <= int(data) < len(self.points) else ""

    def _clicked(self, _item, spots, _event=None) -> None:
        if len(spots):
            index = spots[0].data()
            if index is not None and 0 <= int(index) < len(self.points):
                self.pointClicked.emit(self.points[int(index)])

    # ----- drawing ------------------------------------------------------------------------

    def point_colors(self) -> list[str]:
        if self.color_by == "role":
            return [SIDE_COLORS[_side(point)] for point in self.points]
        order = {cid: i for i, cid in enumerate(dict.fromkeys(point.conversation_id for point in self.points))}
        hues = max(1, len(order))
        return [self._pg.intColor(order[point.conversation_id], hues=min(hues, 24)).name() for point in self.points]

    def _redraw_points(self) -> None:
        pg = self._pg
        colors = self.point_colors()
        brushes = [pg.mkBrush(color) for color in colors]
        ring = pg.mkPen(PERSON_COLOR, width=2)
        self.scatter.setData(
            x=self.xy[:, 0] if len(self.xy) else [],
            y=self.xy[:, 1] if len(self.xy) else [],
            brush=brushes,
            pen=[ring if point.person else pg.mkPen(None) for point in self.points],
            data=list(range(len(self.points))),
        )
        self.legend.clear()
        if any(point.person for point in self.points):
            sample = pg.ScatterPlotItem(size=8, brush=None, pen=ring)
            self.legend.addItem(sample, "you (your messages)")
        if self.color_by == "role":
            for side in dict.fromkeys(_side(point) for point in self.points):
                if side == "them":
                    sample = pg.ScatterPlotItem(size=8, brush=pg.mkBrush(SIDE_COLORS[side]), pen=None)
                    self.legend.addItem(sample, "them (the others' messages)")
        # By conversation there is no legend (dozens of entries would cover the points):
        # hovering a point names its conversation.

    def _mark(self, marker, label_item, signature, label: str):
        xy = self.project(signature)
        if xy is None:
            marker.setData(x=[], y=[])
            label_item.setText("")
            return None
        marker.setData(x=[xy[0]], y=[xy[1]])
        label_item.setText(label)
        label_item.setPos(float(xy[0]), float(xy[1]))
        return xy
