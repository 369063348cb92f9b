"""An inline message in a tab: what happened, in plain words, coloured by kind.

Errors a user can fix are shown here, where they happened, not in a dialog.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget


class MessageLabel(QLabel):
    KINDS = ("error", "ok", "info")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.kind = ""
        self.hide()

    def show_message(self, kind: str, text: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown message kind {kind!r}")
        self.kind = kind
        self.setProperty("role", f"message-{kind}")
        # A dynamic property changes the stylesheet match only after a re-polish.
        self.style().unpolish(self)
        self.style().polish(self)
        self.setText(text)
        self._fit_height()
        self.show()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        # Layouts (a form row, a column in a scroll area) do not always give a wrapped label
        # the height its text needs at its width: it was cut to one line. Ask for it.
        if self.width() > 0:
            needed = self.heightForWidth(self.width())
            if needed > 0 and needed != self.minimumHeight():
                self.setMinimumHeight(needed)

    def show_error(self, text: str) -> None:
        self.show_message("error", text)

    def show_ok(self, text: str) -> None:
        self.show_message("ok", text)

    def show_info(self, text: str) -> None:
        self.show_message("info", text)

    def clear_message(self) -> None:
        self.kind = ""
        self.clear()
        self.hide()
