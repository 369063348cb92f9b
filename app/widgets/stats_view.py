"""Dataset statistics: counts, tokens for the chosen base, and the phase and pattern
distributions as bar charts (pyqtgraph, imported when first drawn)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.widgets.trajectory_style import PHASE_COLORS
from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
from cognitivetwin_core.annotation.trajectory import PHASE_NAMES


class StatsView(QWidget):
    countTokensRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.stats: dict | None = None
        self.phase_chart = None
        self.pattern_chart = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.conversations_label = QLabel("–")
        self.messages_label = QLabel("–")
        self.characters_label = QLabel("–")
        self.sources_label = QLabel("–")
        self.sources_label.setWordWrap(True)
        token_row = QHBoxLayout()
        self.tokens_label = QLabel("not counted yet")
        self.count_tokens_button = QPushButton("Count tokens")
        self.count_tokens_button.setToolTip(
            "Tokenise every message with the chosen base model's tokenizer (runs in the background)."
        )
        self.count_tokens_button.clicked.connect(self.countTokensRequested)
        token_row.addWidget(self.tokens_label, 1)
        token_row.addWidget(self.count_tokens_button)
        form.addRow("Conversations", self.conversations_label)
        form.addRow("Messages", self.messages_label)
        form.addRow("Characters", self.characters_label)
        form.addRow("Tokens", token_row)
        form.addRow("Sources", self.sources_label)
        layout.addLayout(form)
        # Files to import again: imports that compared conversations by their texts alone.
        self.repeat_label = QLabel()
        self.repeat_label.setWordWrap(True)
        self.repeat_label.setVisible(False)
        layout.addWidget(self.repeat_label)
        self.charts_layout = QVBoxLayout()
        layout.addLayout(self.charts_layout, 1)

    def _ensure_charts(self) -> None:
        if self.phase_chart is not None:
            return
        import pyqtgraph as pg

        # Horizontal bars: the category names sit on the left axis, where long names fit.
        self.phase_chart = pg.PlotWidget(title="Messages per phase")
        self.pattern_chart = pg.PlotWidget(title="Messages per pattern")
        for chart, names in ((self.phase_chart, PHASE_NAMES), (self.pattern_chart, PATTERN_NAMES)):
            chart.setBackground(None)
            chart.setMouseEnabled(x=False, y=False)
            chart.setMinimumHeight(150)
            chart.getPlotItem().invertY(True)  # first category at the top
            axis = chart.getPlotItem().getAxis("left")
            axis.setTicks([[(i, name) for i, name in enumerate(names)]])
            axis.setStyle(tickFont=self.font())
            # A fixed width that fits the longest name: pyqtgraph otherwise drops labels
            # that did not fit the width it measured on an earlier draw.
            axis.setWidth(max(self.fontMetrics().horizontalAdvance(name) for name in names) + 16)
            self.charts_layout.addWidget(chart, len(names))
        self._phase_bars = None
        self._pattern_bars = None

    def show_stats(self, stats: dict) -> None:
        import numpy as np
        import pyqtgraph as pg

        self.stats = stats
        self.conversations_label.setText(f"{stats['conversations']:,}")
        self.messages_label.setText(
            f"{stats['messages']:,} (mean {stats['mean_messages_per_conversation']:.1f} per conversation)"
        )
        self.characters_label.setText(f"{stats['characters']:,}")
        sources = stats.get("by_source") or {}
        self.sources_label.setText(", ".join(f"{name}: {count:,}" for name, count in sources.items()) or "none yet")
        advice = [record["advice"] for record in stats.get("imports_to_repeat") or []]
        self.repeat_label.setText("\n".join(advice))
        self.repeat_label.setVisible(bool(advice))
        self._ensure_charts()
        phase_counts = np.array([stats["by_phase"].get(i, 0) for i in range(len(PHASE_NAMES))], dtype=np.float64)
        pattern_counts = np.array([stats["by_pattern"].get(name, 0) for name in PATTERN_NAMES], dtype=np.float64)
        for chart, attr, counts, brushes in (
            (self.phase_chart, "_phase_bars", phase_counts, [pg.mkBrush(c) for c in PHASE_COLORS]),
            (self.pattern_chart, "_pattern_bars", pattern_counts, [pg.mkBrush("#4263eb")] * len(pattern_counts)),
        ):
            old = getattr(self, attr)
            if old is not None:
                chart.removeItem(old)
            bars = pg.BarGraphItem(
                x0=0.0, y=np.arange(len(counts), dtype=np.float64), width=counts, height=0.7, brushes=brushes, pen=None
            )
            chart.addItem(bars)
            setattr(self, attr, bars)
            chart.setYRange(-0.6, len(counts) - 0.4, padding=0)
            chart.setXRange(0, max(1.0, float(counts.max()) * 1.05), padding=0)

    def bar_heights(self, which: str) -> list[float]:
        """The drawn bar lengths (message counts) of the "phase" or "pattern" chart."""
        bars = self._phase_bars if which == "phase" else self._pattern_bars
        return [] if bars is None else [float(v) for v in bars.opts["width"]]

    def show_tokens(self, text: str) -> None:
        self.tokens_label.setText(text)

    def set_token_count_busy(self, busy: bool) -> None:
        self.count_tokens_button.setEnabled(not busy)
