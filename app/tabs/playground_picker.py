"""The Playground's message picker: a conversation of the workspace (searchable) and one of
its messages, with the annotations the analysis needs (one page of the workspace's
conversation list, at most CONVERSATIONS_SHOWN)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

SEARCH_DEBOUNCE_MS = 300
CONVERSATIONS_SHOWN = 500
_PREVIEW_CHARS = 90


def _preview(text: str, limit: int = _PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class MessagePicker(QWidget):
    """A conversation (searchable) and one of its messages, from the open workspace."""

    messageChosen = Signal(str, int)  # conversation id, turn index

    def __init__(self, compact: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.conversation = None
        self.annotations: list = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Find a conversation (id, title or text)…")
        self.search.setClearButtonEnabled(True)
        self.conversation_combo = QComboBox()
        self.conversation_combo.setMinimumContentsLength(24)
        self.conversation_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.message_list = QListWidget()
        self.message_list.setMinimumHeight(90 if compact else 140)
        self.message_list.setWordWrap(False)
        self.message_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # elided instead
        layout.addWidget(self.search)
        layout.addWidget(self.conversation_combo)
        layout.addWidget(self.message_list, 1)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.reload)
        self.search.textChanged.connect(self._search_timer.start)
        self.conversation_combo.currentIndexChanged.connect(self._conversation_changed)
        self.message_list.currentRowChanged.connect(self._message_changed)

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.reload()

    def reload(self) -> None:
        current = self.conversation_combo.currentData()
        self.conversation_combo.blockSignals(True)
        self.conversation_combo.clear()
        if self.workspace is not None:
            search = self.search.text().strip() or None
            for summary in self.workspace.list_conversations(0, CONVERSATIONS_SHOWN, search=search):
                title = summary.title or summary.preview
                self.conversation_combo.addItem(
                    f"{summary.id} · {summary.message_count} msgs · {_preview(title, 48)}", summary.id
                )
        self.conversation_combo.blockSignals(False)
        index = self.conversation_combo.findData(current) if current is not None else -1
        self.conversation_combo.setCurrentIndex(index if index >= 0 else (0 if self.conversation_combo.count() else -1))
        self._conversation_changed()

    def select(self, conversation_id: str, turn_index: int) -> bool:
        """Show this message (as if a user picked it); False when it is not in the workspace."""
        index = self.conversation_combo.findData(conversation_id)
        if index < 0:
            self.search.blockSignals(True)
            self.search.clear()
            self.search.blockSignals(False)
            self.reload()
            index = self.conversation_combo.findData(conversation_id)
        if index < 0:
            return False
        if index != self.conversation_combo.currentIndex():
            self.conversation_combo.setCurrentIndex(index)
        if not 0 <= turn_index < self.message_list.count():
            return False
        if self.message_list.currentRow() == turn_index:
            self._message_changed(turn_index)
        else:
            self.message_list.setCurrentRow(turn_index)
        return True

    def _conversation_changed(self, *_args) -> None:
        conversation_id = self.conversation_combo.currentData()
        self.message_list.blockSignals(True)
        self.message_list.clear()
        self.conversation, self.annotations = None, []
        if self.workspace is not None and conversation_id is not None:
            self.conversation = self.workspace.get_conversation(conversation_id)
            self.annotations = self.workspace.annotations(conversation_id)
            from cognitivetwin_core.data.twin_speaker import is_person

            person = self.workspace.twin_speaker()
            for index, message in enumerate(self.conversation.messages):
                # Numbered from 1 as in the Data tab; the person's messages are "you".
                who = "you" if is_person(message, person) else "them"
                item = QListWidgetItem(f"{index + 1}. {who}: {_preview(message.content)}")
                item.setToolTip(message.content[:1500])
                self.message_list.addItem(item)
        self.message_list.blockSignals(False)
        if self.message_list.count():
            self.message_list.setCurrentRow(0)  # a conversation opens on its first message

    def _message_changed(self, row: int) -> None:
        if self.conversation is not None and 0 <= row < len(self.conversation.messages):
            self.messageChosen.emit(self.conversation.id, row)

    def current(self) -> tuple[str, int] | None:
        row = self.message_list.currentRow()
        if self.conversation is None or row < 0:
            return None
        return self.conversation.id, row
