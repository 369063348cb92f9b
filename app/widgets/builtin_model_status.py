"""The status bar's word on the built-in model's one-time preparation (`app/qt/builtin_model.py`):
what it prepares and how long it takes, with a bar; hidden when there is nothing to say."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from app.qt.builtin_model import FAILED, PREPARING, READY, BuiltinModelPreparation

READY_SHOWN_MS = 15_000


class BuiltinModelStatus(QWidget):
    def __init__(self, preparation: BuiltinModelPreparation, parent: QWidget | None = None):
        super().__init__(parent)
        self.preparation = preparation
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.bar.setFixedWidth(120)
        self.bar.setTextVisible(False)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addWidget(self.bar)
        self._was_preparing = False
        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.setInterval(READY_SHOWN_MS)
        self._hide_timer.timeout.connect(self.hide)
        preparation.changed.connect(self._show)
        self._show()

    def _show(self) -> None:
        state = self.preparation.state
        self.bar.setVisible(state == PREPARING)
        if state == PREPARING:
            self._was_preparing = True
            self.label.setText(self.preparation.text())
            self.bar.setValue(self.preparation.percent())
            self.show()
        elif state == FAILED:
            self.label.setText(self.preparation.text())
            self.show()
        elif state == READY and self._was_preparing:
            self._was_preparing = False
            self.label.setText("The built-in model is ready.")
            self.show()
            self._hide_timer.start()
        else:
            self.hide()
