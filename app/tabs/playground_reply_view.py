"""One reply of the Playground's chat: who wrote it, the text as it arrives, and its scores."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget


class ReplyView(QFrame):
    """One reply: who wrote it, the text as it arrives, and its scores."""

    SHOW_MS = 50

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.title = QLabel(f"<b>{title}</b>")
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score = QLabel("")
        self.score.setWordWrap(True)
        self.score.setProperty("role", "hint")
        # Word-wrapped labels only claim the height their text needs with these policies; with
        # the defaults a reply that grows is clipped under the next line.
        for label in (self.text, self.score):
            label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.MinimumExpanding)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.remembered = QLabel("")
        self.remembered.setWordWrap(True)
        self.remembered.setTextFormat(Qt.TextFormat.PlainText)
        self.remembered.setProperty("role", "hint")
        self.remembered.setToolTip("Your own past messages the twin was shown before answering (its memory)")
        self.remembered.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.MinimumExpanding)
        self.remembered.hide()
        layout.addWidget(self.title)
        layout.addWidget(self.remembered)
        layout.addWidget(self.text)
        layout.addWidget(self.score)
        self._raw = ""
        # The text as it arrives is shown at most every SHOW_MS: each new text re-wraps the
        # label and lays out the whole transcript, and pieces that arrive together (a burst
        # of queued signals is handled in one go) would hold the GUI thread for all of them.
        self._show_timer = QTimer(self, singleShot=True, interval=self.SHOW_MS)
        self._show_timer.timeout.connect(self.show_text)

    def show_remembered(self, items) -> None:
        """The remembered messages the reply was written with, above it."""
        if items:
            self.remembered.setText("\n".join(f"remembered: {item.text}" for item in items))
        self.remembered.setVisible(bool(items))

    def append(self, piece: str) -> None:
        self._raw += piece
        if not self._show_timer.isActive():
            self._show_timer.start()

    def show_text(self) -> None:
        """The text so far, now (not at the next SHOW_MS)."""
        self._show_timer.stop()
        self.text.setText(self._raw.strip())

    def finish(self, reply, scorer_note: str = "", limit: int | None = None) -> None:
        """`limit`: the longest reply asked for, in tokens; a reply that reached it was cut."""
        if reply is None:
            return
        self._show_timer.stop()
        self._raw = reply.text
        self.text.setText(reply.text or "(no reply)")
        parts = []
        if reply.stopped:
            parts.append("stopped")
        elif limit and reply.tokens >= limit:
            parts.append("cut short at the longest reply allowed (Advanced settings ▸ Longest reply)")
        if getattr(reply, "yours", None) is not None:
            parts.append(f"sounds like you: {reply.yours:.0%}")
        if reply.score is not None:
            closeness = reply.score.sounds_like
            parts.append(
                f"style closeness: {closeness:.2f} (-1 to 1)"
                if closeness is not None
                else "style closeness: unavailable"
            )
            patterns = ", ".join(f"{name} {p:.0%}" for name, p in reply.score.top_patterns(3))
            parts.append(f"patterns: {patterns}")
        elif scorer_note:
            parts.append(scorer_note)
        self.score.setText(" · ".join(parts))
