"""The planning head's K steps, each with the workspace messages nearest to it (closeness, the cosine):
what the model expects to come next, as real messages a user can read.

Rows are given as plain tuples so the view needs no core type:
`steps = [[(score, conversation_id, turn_index, writer, text), ...], ...]` (nearest first),
`writer` the participant's name or else the role; the person's own (the workspace's twin
speaker) read "you", other roles "them", other names as they are.
Double-clicking a neighbour emits `messageActivated(conversation_id, turn_index)`.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from cognitivetwin_core.annotation.trajectory import ROLE_CODES
from cognitivetwin_core.phase2.verdicts import step_label

_TEXT_CHARS = 220


def who_wrote(writer: str, person: str | None) -> str:
    """ "you" for the person's message, "them" for another role, a participant by name."""
    if person is not None and writer == person:
        return "you"
    return "them" if writer in ROLE_CODES else writer


class PlanStepsView(QTreeWidget):
    messageActivated = Signal(str, int)

    COLUMNS = ("Step / nearest message", "Closeness", "Who", "Where")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setColumnCount(len(self.COLUMNS))
        self.setHeaderLabels(list(self.COLUMNS))
        # Short titles leave the messages room; what each column means is in its tooltip.
        for column, tip in enumerate(
            (
                "What the twin expects next, and the real messages closest to it",
                "How close the message comes to the twin's guess, from -1 (opposite) to 1 (the same)",
                "Who wrote it: you, them (the other side), or the participant's name",
                "The conversation and the message's number in it",
            )
        ):
            self.headerItem().setToolTip(column, tip)
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.itemDoubleClicked.connect(self._activated)
        self._steps: list[list[tuple]] = []

    def set_steps(
        self, steps: Sequence[Sequence[tuple]], current: tuple[str, int] | None = None, person: str | None = None
    ) -> None:
        """`current`: the analysed message's (conversation id, turn index), marked where it
        appears among the neighbours (a plan step close to the message itself means the
        model expects more of the same). `person`: the twin speaker, whose messages read "you"."""
        self.clear()
        self._steps = [list(step) for step in steps]
        for number, neighbours in enumerate(self._steps, start=1):
            best = f" (best {neighbours[0][0]:.3f})" if neighbours else ""
            ahead = step_label(number)
            step_item = QTreeWidgetItem([f"Step {number}: {ahead} (turn t+{number}){best}", "", "", ""])
            step_item.setToolTip(
                0,
                f"What the twin expects {ahead}: the messages of the data that sat at that turn of "
                "their conversations and are closest to its prediction.",
            )
            font = step_item.font(0)
            font.setBold(True)
            step_item.setFont(0, font)
            for score, conversation_id, turn_index, writer, text in neighbours:
                flat = " ".join(str(text).split())
                shown = flat if len(flat) <= _TEXT_CHARS else flat[: _TEXT_CHARS - 1] + "…"
                is_current = current is not None and (conversation_id, int(turn_index)) == tuple(current)
                if is_current:
                    shown = f"(this message) {shown}"
                child = QTreeWidgetItem(
                    [shown, f"{score:.3f}", who_wrote(writer, person), f"{conversation_id} #{int(turn_index) + 1}"]
                )
                if is_current:
                    font = child.font(0)
                    font.setItalic(True)
                    child.setFont(0, font)
                child.setToolTip(0, str(text)[:2000])
                child.setData(0, Qt.ItemDataRole.UserRole, (conversation_id, int(turn_index)))
                child.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                step_item.addChild(child)
            self.addTopLevelItem(step_item)
            step_item.setExpanded(True)

    def steps(self) -> list[list[tuple]]:
        return [list(step) for step in self._steps]

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        key = item.data(0, Qt.ItemDataRole.UserRole)
        if key:
            self.messageActivated.emit(str(key[0]), int(key[1]))
