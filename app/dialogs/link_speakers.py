""" "These are all me": link a person's names, numbers, addresses and handles across sources
into one speaker (cognitivetwin_core/data/person_identity.py, docs/importers.md).

Opened with `open()`, never `exec()` (docs/qt.md §11); `accepted` hands the choice back.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)


class LinkSpeakersDialog(QDialog):
    """A checkable list of the workspace's speakers and the one name to give them."""

    def __init__(self, speakers: list[tuple[str, int]], suggested: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("These are all me")
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Tick every name, number, e-mail address or handle that is you in your chats. "
            "The twin then learns all of those messages as yours."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.list = QListWidget()
        for name, messages in speakers:
            item = QListWidgetItem(f"{name} — {messages:,} messages")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name == suggested else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        layout.addWidget(self.list)
        layout.addWidget(QLabel("Your name, as the twin should show it:"))
        self.name_edit = QLineEdit(suggested or "")
        layout.addWidget(self.name_edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def chosen(self) -> tuple[str, list[str]]:
        """(the one name, the ticked speakers)."""
        ticked = [
            self.list.item(row).data(Qt.ItemDataRole.UserRole)
            for row in range(self.list.count())
            if self.list.item(row).checkState() == Qt.CheckState.Checked
        ]
        return self.name_edit.text().strip(), ticked
