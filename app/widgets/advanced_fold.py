"""The "Advanced settings" fold: the engineer's settings stay out of sight, with their tried
defaults, until the person opens them (plain names on the labels, exact terms in tooltips).

    fold = AdvancedFold()              # fold.button goes where the person looks for it
    fold.content_layout.addLayout(...) # the settings; the fold itself goes below them
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton, QVBoxLayout, QWidget


class AdvancedFold(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.button = QToolButton()
        self.button.setText("Advanced settings")
        self.button.setCheckable(True)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.setArrowType(Qt.ArrowType.RightArrow)
        self.button.setToolTip("The engineer's settings; their defaults are tried and usually best.")
        self.button.toggled.connect(self.set_open)
        self.content_layout = QVBoxLayout(self)
        self.content_layout.setContentsMargins(0, 0, 0, 0)
        self.hide()

    def set_open(self, shown: bool) -> None:
        self.setVisible(shown)
        self.button.setChecked(shown)
        self.button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
