"""The Playground's Chat panel: talk to the twin, beside the base if asked, with scores.

The model work runs in the chat's child process (`ChatProcess`,
cognitivetwin_core/playground/chat_process.py), which stays alive across turns: it loads the
twin (base + Phase 1 adapter) and the scorer (the Phase 2 run) the first time, generates and
scores; the window's process never imports torch. A `BackgroundJob` thread follows one turn's
messages and relays them to the GUI thread, text word by word. Stop asks the child to end the
reply being written (it checks before each token). The conversation is kept here and sent
with each message, so a child that crashed (the turn fails with a sentence) is replaced at
the next message and goes on with it.

Signals for tests and the window: `replyStarted()`, `textArrived(who, piece)`,
`replyFinished(turn)` (a ChatTurn, scores included), `failed(message)`.

Memory and teaching (docs/teaching-and-memory.md): "Remember my past messages" (on by default
where the workspace has a memory) puts the person's most relevant past messages in the
context and shows them under the reply; every twin reply has a `FeedbackBar`, and the
`TeachPanel` below the conversation teaches the chosen twin from that feedback
(app/tabs/playground_teach.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QWidget,
)

from app.qt.background_job import BackgroundJob
from app.tabs.playground_chat_layout import ChatPanelLayout
from app.tabs.playground_reply_view import ReplyView
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.playground.chat_models import ChatAnswer, ChatRemembered, ChatStatus, ChatText
from cognitivetwin_core.playground.chat_process import ChatProcess
from cognitivetwin_core.playground.chat_request import ChatRequest

log = logging.getLogger(__name__)

TWIN, BASE = "twin", "base"  # as cognitivetwin_core.playground.chat names them (not imported: torch)


def follow_chat_turn(progress, cancellation, chat: ChatProcess, request: ChatRequest, turns: tuple) -> ChatAnswer:
    """The job: hand each message of one turn in the chat's child to the GUI; its `ChatAnswer`."""
    for message in chat.turn(request, turns):
        if isinstance(message, ChatAnswer):
            return message
        progress(message)
    raise CognitiveTwinError("The chat process ended the turn without a reply; the log file has the details.")


NO_ADAPTER_TEXT = (
    "There is no Phase 1 adapter in this workspace yet: train one in the Phase 1 tab "
    "(or open an adapter folder) to talk to your twin."
)


class ChatPanel(ChatPanelLayout, QWidget):
    replyStarted = Signal()
    textArrived = Signal(str, str)
    replyFinished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.run_dir: str | None = None
        self.chat = ChatProcess()
        self.conversation: list = []  # the ChatTurns so far (sent with each message to the child)
        self.last_answer: ChatAnswer | None = None
        self._request: ChatRequest | None = None
        self.job = BackgroundJob(self, name="chat reply")
        self.job.progress.connect(self._on_progress)
        self.job.succeeded.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.job.cancelled.connect(self._on_cancelled)
        self.job.finished.connect(self._on_job_finished)
        self._views: dict[str, ReplyView] = {}
        self._scroll_timer = QTimer(self, singleShot=True, interval=ReplyView.SHOW_MS)
        self._scroll_timer.timeout.connect(self._scroll_to_end)
        self._pending_user = ""
        self._build()
        self.set_phase2_run(None)
        self._update_buttons()

    # ----- hooks -------------------------------------------------------------------------------

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.refresh_adapters()
        self._refresh_memory()

    def _refresh_memory(self) -> None:
        """The memory switch: available, and on by default, where the workspace has a memory."""
        from cognitivetwin_core.data.message_memory import has_memory

        available = self.workspace is not None and has_memory(self.workspace)
        self.memory_box.setEnabled(available)
        self.memory_box.setChecked(available)
        if not available:
            self.memory_box.setToolTip(
                "No memory in this workspace yet: build it with `cognitivetwin memory build` to let the twin "
                "recall your past messages."
            )

    def set_phase2_run(self, run_dir: str | Path | None) -> None:
        """The run whose style head scores the replies (None: no scores)."""
        self.run_dir = str(run_dir) if run_dir else None
        # The run's name, not its folder (a long path widened the whole tab); the folder in the tooltip.
        self.run_label.setText(
            f"Replies are scored by the Phase 2 run {Path(self.run_dir).name} (how much each sounds like you)."
            if self.run_dir
            else "No Phase 2 run chosen: the replies are not scored."
        )
        self.run_label.setToolTip(f"The run's folder: {self.run_dir}" if self.run_dir else "")

    def shutdown(self) -> None:
        self.job.cancel()
        self.chat.request_stop()
        self.teach.shutdown()
        if not self.job.wait(10_000):  # loading the twin does not stop between tokens: end its child
            self.chat.kill()
            self.job.wait()
        self.chat.close()

    def is_busy(self) -> bool:
        return self.job.is_running() or self.teach.is_busy()

    def refresh_adapters(self) -> None:
        current = self.adapter_combo.currentData()
        by_hand = [
            self.adapter_combo.itemData(i)
            for i in range(self.adapter_combo.count())
            if self.adapter_combo.itemData(i, Qt.ItemDataRole.UserRole + 1)
        ]
        self.adapter_combo.blockSignals(True)
        self.adapter_combo.clear()
        records = self.workspace.adapters() if self.workspace is not None else []
        from cognitivetwin_core.phase1.job_names import adapter_name

        for record in reversed(records):  # newest first
            label = adapter_name(record)  # named as its Phase 1 job is; the id in the tooltip
            self.adapter_combo.addItem(label, str(record["path"]))
            self.adapter_combo.setItemData(
                self.adapter_combo.count() - 1, f"Adapter {record['adapter_id']}", Qt.ItemDataRole.ToolTipRole
            )
        for folder in by_hand:
            self.add_adapter_folder(folder, select=False)
        index = self.adapter_combo.findData(current) if current else 0
        self.adapter_combo.setCurrentIndex(max(index, 0) if self.adapter_combo.count() else -1)
        self.adapter_combo.blockSignals(False)
        if not self.adapter_combo.count():
            self.message.show_info(NO_ADAPTER_TEXT)
        elif self.message.text() == NO_ADAPTER_TEXT:  # an adapter came since: the words are stale
            self.message.clear_message()
        self._update_buttons()

    def add_adapter_folder(self, folder: str | Path, *, select: bool = True) -> None:
        folder = str(Path(folder).expanduser().resolve())
        index = self.adapter_combo.findData(folder)
        if index < 0:
            self.adapter_combo.addItem(f"Folder {Path(folder).name}", folder)
            index = self.adapter_combo.count() - 1
            self.adapter_combo.setItemData(index, True, Qt.ItemDataRole.UserRole + 1)
            self.adapter_combo.setItemData(index, folder, Qt.ItemDataRole.ToolTipRole)
        if self.message.text() == NO_ADAPTER_TEXT:
            self.message.clear_message()
        if select:
            self.adapter_combo.setCurrentIndex(index)
        self._update_buttons()

    def _open_adapter_folder(self) -> None:
        start = str(self.workspace.adapters_dir) if self.workspace is not None else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a Phase 1 adapter folder", start)
        if folder:
            self.add_adapter_folder(folder)

    def _adapter_changed(self, *_args) -> None:
        if self.conversation:
            self.clear()
        self.message.clear_message()
        self._update_buttons()

    # ----- the conversation ----------------------------------------------------------------------

    def sampling_settings(self):
        from cognitivetwin_core.models.generation import SamplingSettings

        seed = self.seed.value()
        return SamplingSettings(
            temperature=self.temperature.value(),
            top_p=self.top_p.value(),
            max_new_tokens=self.max_new_tokens.value(),
            seed=None if seed < 0 else seed,
        )

    def send(self, text: str | None = None) -> bool:
        """Send `text` (default: what is typed); False, with a message, when it cannot go."""
        text = (text if isinstance(text, str) else self.input.toPlainText()).strip()
        adapter = self.adapter_combo.currentData()
        if self.job.is_running() or not text:
            return False
        if not adapter:
            self.message.show_error("Choose a Phase 1 adapter first (or open an adapter folder).")
            return False
        try:
            settings = self.sampling_settings()
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
            return False
        self.message.clear_message()
        self.input.clear()
        self._pending_user = text
        self._add_user_bubble(text)
        self._views = self._add_reply_row(self.compare_box.isChecked())
        request = ChatRequest(
            adapter,
            text,
            settings=settings,
            system_prompt=self.system_prompt.text(),
            compare_base=self.compare_box.isChecked(),
            memory=self.memory_box.isChecked(),
            run_dir=self.run_dir,
            workspace=self.workspace,
        )
        self._request = request
        self.job.start(follow_chat_turn, self.chat, request, tuple(self.conversation))
        self.status.setText("Starting…")
        self._update_buttons()
        self.replyStarted.emit()
        return True

    def stop(self) -> None:
        if self.job.is_running():
            self.chat.request_stop()  # the child ends the reply at its next token
            self.status.setText("Stopping…")

    def clear(self) -> None:
        if self.job.is_running():
            return
        self.conversation.clear()
        while self.transcript_layout.count() > 1:
            item = self.transcript_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().setParent(None)
        self._views = {}
        self.status.setText("")
        self._update_buttons()

    def save(self, path: str | Path) -> Path | None:
        if not self.conversation:
            return None
        from cognitivetwin_core.playground.chat import conversation_record, save_conversation

        request, answer = self._request, self.last_answer
        record = conversation_record(
            self.conversation,
            adapter_dir=request.adapter_dir,
            base_model=answer.base_model if answer is not None else "",
            phase2_run=request.run_dir,
            system_prompt=request.system_prompt,
            settings=request.settings,
        )
        return save_conversation(path, record)

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the conversation", "conversation.json", "JSON (*.json)")
        if path:
            saved = self.save(path)
            if saved:
                self.message.show_ok(f"Saved the conversation to {saved}.")

    def turns(self) -> list:
        return list(self.conversation)

    # ----- transcript widgets ---------------------------------------------------------------------

    def _insert(self, widget: QWidget) -> None:
        self.transcript_layout.insertWidget(self.transcript_layout.count() - 1, widget)

    def _add_user_bubble(self, text: str) -> None:
        view = ReplyView("You")
        view.append(text)
        view.show_text()
        self._insert(view)

    def _add_reply_row(self, compare: bool) -> dict[str, ReplyView]:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(24, 0, 0, 0)
        views = {TWIN: ReplyView("Twin")}
        layout.addWidget(views[TWIN], 1)
        if compare:
            views[BASE] = ReplyView("Base (without your adapter)")
            layout.addWidget(views[BASE], 1)
        self._insert(row)
        return views

    # ----- job signals (GUI thread) ------------------------------------------------------------------

    def _on_progress(self, event) -> None:
        if isinstance(event, ChatStatus):
            self.status.setText(event.text)
        elif isinstance(event, ChatRemembered):
            view = self._views.get(TWIN)
            if view is not None:
                view.show_remembered(event.items)
        elif isinstance(event, ChatText):
            who, piece = event.who, event.piece
            view = self._views.get(who)
            if view is not None:
                view.append(piece)
            writing = "The base is writing…" if who == BASE else "The twin is writing…"
            if self.status.text() != writing:
                self.status.setText(writing)
            self.textArrived.emit(who, piece)
            if not self._scroll_timer.isActive():  # with the text, at most every ReplyView.SHOW_MS
                self._scroll_timer.start()

    def _scroll_to_end(self) -> None:
        bar = self.scroll.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_done(self, answer: ChatAnswer) -> None:
        turn = answer.turn
        self.last_answer = answer
        self.conversation.append(turn)
        note = answer.scorer_note or ("" if self.run_dir else "choose a Phase 2 run to score replies")
        limit = self.max_new_tokens.value()
        self._views[TWIN].finish(turn.twin, note, limit)
        if answer.judge_note is not None:
            from cognitivetwin_core.playground.judges.sounds_like_you import SCALE

            self._views[TWIN].score.setToolTip(f"Sounds like you: {SCALE}; {answer.judge_note}.")
            if turn.verdict:
                self._views[TWIN].score.setText(self._views[TWIN].score.text() + f" · {turn.verdict}")
            elif not answer.judge_reliable:
                self._views[TWIN].score.setText(self._views[TWIN].score.text() + f" · {answer.judge_note}")
        self._views[TWIN].show_remembered(turn.remembered)
        if self.workspace is not None and turn.twin.text:
            self._add_feedback_bar(self._views[TWIN], turn)
        if BASE in self._views:
            if turn.base is not None:
                self._views[BASE].finish(turn.base, note, limit)
            else:
                self._views[BASE].score.setText("not written: the twin's reply was stopped")
        stopped = turn.twin.stopped or (turn.base and turn.base.stopped)
        self.status.setText("Stopped." if stopped else turn.twin.left_out_note())
        self.replyFinished.emit(turn)

    def _add_feedback_bar(self, view: ReplyView, turn) -> None:
        """Thumbs and "I'd say it like this" under the twin's reply, stored in the workspace."""
        from app.tabs.playground_teach import FeedbackBar
        from cognitivetwin_core.data.feedback import add_feedback, undo_feedback

        workspace, adapter = self.workspace, Path(self._request.adapter_dir)

        def store(verdict: str, edit: str | None) -> int:
            return add_feedback(workspace, adapter, turn.context, turn.twin.text, verdict=verdict, edit=edit).id

        view.feedback = FeedbackBar(view.text, store, lambda feedback_id: undo_feedback(workspace, feedback_id))
        view.layout().addWidget(view.feedback)

    def _taught(self, folder: str) -> None:
        """A new version of the twin: listed and chosen (the conversation starts again)."""
        self.refresh_adapters()
        index = self.adapter_combo.findData(folder)
        if index < 0:
            self.add_adapter_folder(folder)
        else:
            self.adapter_combo.setCurrentIndex(index)

    def _on_failed(self, exc) -> None:
        text = str(exc) if isinstance(exc, CognitiveTwinError) else f"The reply failed unexpectedly ({exc})."
        self.message.show_error(text)
        for view in self._views.values():
            view.score.setText("no reply: see the message above")
        self.status.setText("")
        self.failed.emit(text)

    def _on_cancelled(self) -> None:
        self.status.setText("Stopped.")

    def _on_job_finished(self) -> None:
        self._update_buttons()

    def _update_buttons(self, *_args) -> None:
        busy = self.job.is_running()
        has_turns = bool(self.conversation)
        self.send_button.setEnabled(not busy and self.adapter_combo.count() > 0)
        self.stop_button.setEnabled(busy)
        self.clear_button.setEnabled(not busy and (has_turns or self.transcript_layout.count() > 1))
        self.save_button.setEnabled(not busy and has_turns)
        teaching = self.teach.is_busy()
        self.adapter_combo.setEnabled(not busy and not teaching)
        self.open_adapter_button.setEnabled(not busy and not teaching)
        self.teach.set_target(self.workspace, self.adapter_combo.currentData())
