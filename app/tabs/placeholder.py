"""A tab whose controls arrive in a later release: it says, in words, what it will hold.

No fake buttons: a user must not click something that does nothing.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PlaceholderTab(QWidget):
    def __init__(self, title: str, description: str, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 32, 32, 32)
        heading = QLabel(title)
        heading.setProperty("role", "placeholder-title")
        body = QLabel(description)
        body.setWordWrap(True)
        body.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(heading)
        layout.addWidget(body)
        layout.addStretch(1)
        self.description = description
