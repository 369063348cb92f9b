"""One analysed message in compact form: a title, its pattern bars, signature strip and
stylometric readout. The Compare view puts two side by side."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.widgets.pattern_bars import PatternBars
from app.widgets.signature_strip import SignatureStrip
from app.widgets.stylometric_readout import StylometricReadout


class AnalysisPanel(QWidget):
    def __init__(self, heading: str, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.heading = QLabel(f"<b>{heading}</b>")
        self.source_label = QLabel("–")
        self.source_label.setWordWrap(True)
        self.source_label.setTextFormat(Qt.TextFormat.PlainText)
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Room for three lines, so the two panels of a comparison stay aligned row by row.
        self.source_label.setFixedHeight(self.source_label.fontMetrics().lineSpacing() * 3 + 4)
        self.source_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.pattern_bars = PatternBars()
        self.signature_strip = SignatureStrip(rows=4)
        self.stylometric_readout = StylometricReadout()
        layout.addWidget(self.heading)
        layout.addWidget(self.source_label)
        layout.addWidget(QLabel("Pattern probabilities"))
        layout.addWidget(self.pattern_bars)
        layout.addWidget(QLabel("Style signature (how it is written)"))
        layout.addWidget(self.signature_strip)
        layout.addWidget(self.stylometric_readout)
        layout.addStretch(1)

    def show_result(
        self, description: str, probabilities: dict, labels, label_kind: str, signature, predicted: dict, measured: dict
    ) -> None:
        self.source_label.setText(description)
        self.pattern_bars.set_values(probabilities, labels, label_kind)
        self.signature_strip.set_signature(signature)
        self.stylometric_readout.set_values(predicted, measured)

    def clear(self) -> None:
        self.source_label.setText("–")
        self.pattern_bars.clear()
        self.signature_strip.set_signature(None)
        self.stylometric_readout.clear()
