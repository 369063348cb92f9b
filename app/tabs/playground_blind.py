"""The Playground's blind test (docs/judging.md): for held-out contexts of an evaluated twin,
the person sees their real reply and the twin's in random order and picks the one they wrote
(or, in the second mode, the twin's): keys 1 and 2, S to skip. Each answer is saved in the
workspace at once; the score shows "N of M" with its interval. Reading the pairs and saving
one answer are small and quick, so they run here on the GUI thread.
"""

from __future__ import annotations

import random
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.widgets.message_label import MessageLabel
from cognitivetwin_core.errors import CognitiveTwinError

MODES = (("mine", "Which one did I write?"), ("twin", "Which one is the twin's?"))


def _reply_box(number: int) -> tuple[QFrame, QLabel]:
    frame = QFrame()
    frame.setFrameShape(QFrame.Shape.StyledPanel)
    layout = QVBoxLayout(frame)
    title = QLabel(f"<b>{number}</b>")
    text = QLabel("")
    text.setWordWrap(True)
    text.setTextFormat(Qt.TextFormat.PlainText)
    layout.addWidget(title)
    layout.addWidget(text, 1)
    return frame, text


class BlindTestPanel(QWidget):
    answered = Signal(object)  # the choice: 1, 2 or None (skip)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.test = None
        self.position = 0
        outer = QVBoxLayout(self)
        top = QHBoxLayout()
        self.adapter_combo = QComboBox()
        self.adapter_combo.setToolTip("An evaluated twin: the pairs are the held-out replies of its evaluation")
        self.mode_combo = QComboBox()
        for key, label in MODES:
            self.mode_combo.addItem(label, key)
        self.start_button = QPushButton("Start")
        top.addWidget(QLabel("Twin:"))
        top.addWidget(self.adapter_combo, 1)
        top.addWidget(self.mode_combo)
        top.addWidget(self.start_button)
        outer.addLayout(top)
        self.message = MessageLabel()
        outer.addWidget(self.message)
        self.progress = QLabel("")
        self.progress.setProperty("role", "hint")
        outer.addWidget(self.progress)
        self.context = QLabel("")
        self.context.setWordWrap(True)
        self.context.setTextFormat(Qt.TextFormat.PlainText)
        outer.addWidget(self.context)
        row = QHBoxLayout()
        first, self.first_text = _reply_box(1)
        second, self.second_text = _reply_box(2)
        row.addWidget(first, 1)
        row.addWidget(second, 1)
        outer.addLayout(row, 1)
        buttons = QHBoxLayout()
        self.choose_first = QPushButton("1")
        self.choose_second = QPushButton("2")
        self.skip_button = QPushButton("Skip (S)")
        for button in (self.choose_first, self.choose_second, self.skip_button):
            buttons.addWidget(button)
        outer.addLayout(buttons)
        self.score = QLabel("")
        self.score.setWordWrap(True)
        outer.addWidget(self.score)
        self.start_button.clicked.connect(self.start)
        self.choose_first.clicked.connect(lambda: self.choose(1))
        self.choose_second.clicked.connect(lambda: self.choose(2))
        self.skip_button.clicked.connect(lambda: self.choose(None))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._update_buttons()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt's name
        keys = {Qt.Key.Key_1: 1, Qt.Key.Key_2: 2, Qt.Key.Key_S: None}
        if event.key() in keys and self.test is not None:
            self.choose(keys[event.key()])
            return
        super().keyPressEvent(event)

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.refresh_adapters()

    def refresh_adapters(self) -> None:

        from cognitivetwin_core.playground.evaluation_file import EVALUATION_FILE

        current = self.adapter_combo.currentData()
        self.adapter_combo.clear()
        records = self.workspace.adapters() if self.workspace is not None else []
        for record in reversed(records):
            if (Path(record["path"]) / EVALUATION_FILE).is_file():
                self.adapter_combo.addItem(str(record["adapter_id"]), str(record["path"]))
        index = self.adapter_combo.findData(current) if current else 0
        self.adapter_combo.setCurrentIndex(max(index, 0) if self.adapter_combo.count() else -1)
        if not self.adapter_combo.count():
            self.message.show_info("No evaluated twin yet: evaluate one in the Phase 1 tab, then take the test here.")
        self._update_buttons()

    def start(self, *, seed: int | None = None) -> bool:
        from cognitivetwin_core.playground.judges.blind import BlindTest

        adapter = self.adapter_combo.currentData()
        if not adapter:
            return False
        try:
            self.test = BlindTest.for_adapter(
                adapter,
                mode=self.mode_combo.currentData(),
                workspace=self.workspace,
                seed=random.SystemRandom().randrange(2**31) if seed is None else seed,
            )
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
            return False
        self.message.clear_message()
        self.position = 0
        self._show_pair()
        self.setFocus()
        return True

    def choose(self, choice: int | None) -> None:
        if self.test is None or self.position >= len(self.test.pairs):
            return
        try:
            self.test.answer(self.test.pairs[self.position], choice)
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
            return
        self.position += 1
        self.answered.emit(choice)
        self._show_pair()

    def _show_pair(self) -> None:
        from cognitivetwin_core.playground.judges.blind import question, score_text

        test = self.test
        self.score.setText(score_text(test.tally(), test.mode))
        if self.position >= len(test.pairs):
            self.progress.setText(f"Done: {len(test.pairs)} pairs. Your answers are saved in the workspace.")
            self.context.setText("")
            self.first_text.setText("")
            self.second_text.setText("")
        else:
            pair = test.pairs[self.position]
            self.progress.setText(
                f"Pair {self.position + 1} of {len(test.pairs)}: {question(test.mode)} Press 1 or 2, or S to skip."
            )
            self.context.setText(f"Message: {pair.context}" if pair.context else "")
            self.first_text.setText(pair.first)
            self.second_text.setText(pair.second)
        self._update_buttons()

    def _update_buttons(self) -> None:
        active = self.test is not None and self.position < len(self.test.pairs)
        for button in (self.choose_first, self.choose_second, self.skip_button):
            button.setEnabled(active)
        self.start_button.setEnabled(self.adapter_combo.count() > 0)
