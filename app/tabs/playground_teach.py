"""Correcting the twin in the Playground's Chat: a verdict bar under each reply, and Teach.

`FeedbackBar` sits under one twin reply: "Sounds like me", "Not me", or "I'd say it like
this", which turns the reply into an editor in place; the verdict is stored in the workspace
(cognitivetwin_core/data/feedback.py) and can be undone. `TeachPanel` runs a Teach
(cognitivetwin_core/phase1/teach.py) in a child process (phase1/teach_process.py: the window
never imports torch) followed by a `BackgroundJob`, with the loss and the reward margin
plotted as they come, Stop (which keeps the run), Resume when the
chosen twin has a stopped run, and the new version when it is done. Feedback the twin already
learned is left out unless "Relearn what it already learned" is ticked. A twin trained on
Together is taught there ("Teach on Together…", app/tabs/teach_on_together.py); its job is
followed in the Phase 1 tab's job list. See docs/teaching-and-memory.md.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from app.qt.background_job import BackgroundJob
from app.widgets.message_label import MessageLabel
from cognitivetwin_core.errors import CognitiveTwinError

log = logging.getLogger(__name__)

LOSS_SERIES, MARGIN_SERIES = "loss", "margin"
LOCAL_TEACH = "Teach the twin from my feedback"
TOGETHER_TEACH = "Teach on Together…"


class FeedbackBar(QWidget):
    """Thumbs and an edit for one reply. `store(verdict, edit)` is given by the owner and
    returns the record's id (or raises CognitiveTwinError); `undo(id)` removes it."""

    stored = Signal(int)

    def __init__(self, reply_label: QLabel, store, undo, parent: QWidget | None = None):
        super().__init__(parent)
        self._reply_label = reply_label
        self._store = store
        self._undo = undo
        self.feedback_id: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 0)
        self.editor = QPlainTextEdit()
        self.editor.setMaximumHeight(80)
        self.editor.setToolTip("Write the reply as you would have said it; Teach learns from the difference")
        self.editor.hide()
        layout.addWidget(self.editor)
        row = QHBoxLayout()
        self.good_button = QPushButton("👍 Sounds like me")
        self.bad_button = QPushButton("👎 Not me")
        self.edit_button = QPushButton("I'd say it like this…")
        self.keep_button = QPushButton("Keep my wording")
        self.cancel_button = QPushButton("Cancel")
        self.undo_button = QPushButton("Undo")
        self.note = QLabel("")
        self.note.setProperty("role", "hint")
        for button in (self.good_button, self.bad_button, self.edit_button, self.keep_button, self.cancel_button):
            row.addWidget(button)
        row.addWidget(self.undo_button)
        row.addWidget(self.note, 1)
        layout.addLayout(row)
        self.good_button.clicked.connect(lambda: self._give("good"))
        self.bad_button.clicked.connect(lambda: self._give("bad"))
        self.edit_button.clicked.connect(self._start_edit)
        self.keep_button.clicked.connect(lambda: self._give("edit", self.editor.toPlainText()))
        self.cancel_button.clicked.connect(self._end_edit)
        self.undo_button.clicked.connect(self._undo_clicked)
        self._show_choices()

    def _show_choices(self) -> None:
        given = self.feedback_id is not None
        editing = self.editor.isVisible()
        for button in (self.good_button, self.bad_button, self.edit_button):
            button.setVisible(not given and not editing)
        self.keep_button.setVisible(editing)
        self.cancel_button.setVisible(editing)
        self.undo_button.setVisible(given)

    def _start_edit(self) -> None:
        self.editor.setPlainText(self._reply_label.text())
        self._reply_label.hide()
        self.editor.show()
        self.editor.setFocus()
        self._show_choices()

    def _end_edit(self) -> None:
        self.editor.hide()
        self._reply_label.show()
        self._show_choices()

    def _give(self, verdict: str, edit: str | None = None) -> None:
        try:
            self.feedback_id = self._store(verdict, edit)
        except CognitiveTwinError as exc:
            self.note.setText(str(exc))
            return
        if verdict == "edit":
            self._reply_label.setText(f"{self._reply_label.text()}\n\nYou'd say: {edit.strip()}")
            self._end_edit()
        words = {
            "good": "Kept: it sounds like you.",
            "bad": "Kept: not you.",
            "edit": "Kept: your wording. Teach learns from it.",
        }
        self.note.setText(words[verdict])
        self._show_choices()
        self.stored.emit(self.feedback_id)

    def _undo_clicked(self) -> None:
        if self.feedback_id is None:
            return
        try:
            self._undo(self.feedback_id)
        except CognitiveTwinError as exc:
            self.note.setText(str(exc))
            return
        self.feedback_id = None
        self.note.setText("Undone.")
        self._show_choices()


def read_together_key() -> str | None:
    """The Together key from the OS keyring (KeyringUnavailableError says why it cannot be read)."""
    from cognitivetwin_core.connections import secrets

    return secrets.get_secret(secrets.TOGETHER_API_KEY)


def run_teach(progress, cancelled, process):
    """The job: follow a Teach run in its child process (phase1/teach_process.py), reporting
    each event; its result. Stop is the process's cancel, checked between steps (the run is
    kept for a resume)."""
    from cognitivetwin_core.phase1.teach_process import TeachDone

    for message in process.run():
        if isinstance(message, TeachDone):
            return message.result
        progress(message)
    raise CognitiveTwinError("Teaching ended without a new version of the twin; the log file has the details.")


class TeachPanel(QWidget):
    """Teach button, Stop and Resume, the live loss and reward-margin plot, and the outcome in
    words; for a Together twin, "Teach on Together…" (app/tabs/teach_on_together.py)."""

    taught = Signal(str)  # the new adapter folder
    failed = Signal(str)
    togetherLaunched = Signal(str)  # a Teach job on Together: its id (Phase 1's job list follows it)
    busyChanged = Signal()  # a run (here or the Together launch) started or ended: the twin is (un)locked

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.adapter_dir: str | None = None
        self.max_steps: int | None = None  # None: teach.py's default (a resume: the stopped run's)
        self.read_api_key = read_together_key  # tests give their own
        self.stopped_run: dict | None = None  # the chosen twin's stopped Teach (phase1/teach_checkpoint.py)
        self.together_job: str | None = None  # the Together job the chosen twin came from
        self._together_task = None
        self.job = BackgroundJob(self, name="teach")
        self.process = None  # the running TeachProcess (the model work, in its child)
        self.job.progress.connect(self._on_event)
        self.job.succeeded.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.job.cancelled.connect(self._on_cancelled)
        self.job.finished.connect(self._refresh_target)
        self.job.finished.connect(self.busyChanged)
        self.loss_plot = self.margin_plot = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.teach_button = QPushButton(LOCAL_TEACH)
        self.teach_button.setToolTip(
            "Preference tuning (DPO on your edits, KTO on thumbs alone) continues this twin into a new version; "
            "the current one is kept"
        )
        self.resume_button = QPushButton("Resume teaching")
        self.stop_button = QPushButton("Stop teaching")
        self.stop_button.setToolTip("Stops after the current step and keeps the run: Resume goes on from there")
        self.include_taught_box = QCheckBox("Relearn what it already learned")
        self.include_taught_box.setToolTip(
            "Also teach from feedback this twin (or a version it came from) was already taught from "
            "(--include-taught); by default only new feedback is used"
        )
        self.status = QLabel("")
        self.status.setProperty("role", "hint")
        for widget in (self.teach_button, self.resume_button, self.stop_button, self.include_taught_box):
            row.addWidget(widget)
        row.addWidget(self.status, 1)
        layout.addLayout(row)
        self.message = MessageLabel()
        layout.addWidget(self.message)
        self.plot_box = QHBoxLayout()
        layout.addLayout(self.plot_box)
        self.teach_button.clicked.connect(self._teach_clicked)
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.stop_button.clicked.connect(self.stop)
        self._add_before_and_after(layout)
        self._update_buttons()

    def _add_before_and_after(self, layout) -> None:
        """Did teaching help? The before/after panel (playground_teach_compare.py), run after each Teach."""
        from app.tabs.playground_teach_compare import TeachComparePanel

        self.compare = TeachComparePanel()
        layout.addWidget(self.compare)
        self.taught.connect(self.compare.compare_after)

    def set_target(self, workspace, adapter_dir: str | None) -> None:
        changed = (workspace, adapter_dir) != (self.workspace, self.adapter_dir)
        self.workspace = workspace
        self.adapter_dir = adapter_dir
        self.compare.set_target(workspace, adapter_dir)
        if changed:
            self._refresh_target()
        else:
            self._update_buttons()

    def _refresh_target(self, *_args) -> None:
        """Read what the chosen twin offers: a stopped run to resume, a Together job to continue."""
        from cognitivetwin_core.phase1.teach_checkpoint import stopped_teach
        from cognitivetwin_core.phase1.together_teach import together_parent_job

        self.stopped_run = self.together_job = None
        if self.workspace is not None and self.adapter_dir:
            try:
                self.stopped_run = stopped_teach(self.workspace, self.adapter_dir)
                self.together_job = together_parent_job(self.workspace, self.adapter_dir)
            except (CognitiveTwinError, OSError) as exc:  # a folder gone meanwhile: nothing to offer
                log.info("teach: cannot read the twin in %s: %s", self.adapter_dir, exc)
        self.teach_button.setText(TOGETHER_TEACH if self.together_job else LOCAL_TEACH)
        if self.together_job:
            self.teach_button.setToolTip(
                f"This twin was trained on Together AI (job {self.together_job}): a paid preference-tuning (DPO) "
                "job continues it there from your edits, after you confirm Together's price"
            )
        if self.stopped_run:
            self.resume_button.setToolTip(
                f"Go on with the teaching stopped at step {self.stopped_run.get('step')} of "
                f"{self.stopped_run.get('total_steps')}, on the same feedback and settings"
            )
        self._update_buttons()

    def is_busy(self) -> bool:
        return self.job.is_running() or self._together_busy()

    def _together_busy(self) -> bool:
        return self._together_task is not None and not self._together_task.done()

    def shutdown(self) -> None:
        self.stop()
        if not self.job.wait(10_000) and self.process is not None:
            self.process.kill()  # loading the model does not stop between steps: end its child
        self.job.wait()
        self.compare.shutdown()
        if self._together_busy():
            self._together_task.cancel()

    def _teach_clicked(self) -> None:
        if self.together_job:
            self.start_on_together()
        else:
            self.start()

    def start(self, *, resume: bool = False) -> bool:
        if self.is_busy() or self.workspace is None or not self.adapter_dir:
            return False
        if self.loss_plot is None:
            from app.widgets.live_plot import LivePlot  # pyqtgraph: only when teaching

            self.loss_plot = LivePlot(x_label="step", y_label="loss")
            self.loss_plot.setToolTip("Falls as the twin learns your corrections")
            self.margin_plot = LivePlot(x_label="step", y_label="reward margin")
            self.margin_plot.setToolTip(
                "How much more the twin now prefers your wording to the rejected reply, against the twin "
                "before teaching (0 at the start; rising is learning)"
            )
            for plot in (self.loss_plot, self.margin_plot):
                plot.setMaximumHeight(180)
                self.plot_box.addWidget(plot, 1)
        for plot, name, color, label in (
            (self.loss_plot, LOSS_SERIES, (33, 60, 170), "loss"),
            (self.margin_plot, MARGIN_SERIES, (200, 90, 20), "reward margin"),
        ):
            plot.clear()
            plot.add_series(name, color, label=label)
        self.message.clear_message()
        self.status.setText("Loading the twin to teach it…")
        include_taught = self.include_taught_box.isChecked()
        from cognitivetwin_core.phase1.teach_process import TeachProcess

        self.process = TeachProcess(
            self.workspace.path,
            self.adapter_dir,
            max_steps=self.max_steps,
            resume=resume,
            include_taught=include_taught,
        )
        self.job.start(run_teach, self.process)
        self._update_buttons()
        self.busyChanged.emit()
        return True

    def start_on_together(self) -> bool:
        """Plan the Teach job on Together, confirm its price, launch it (on the qasync loop)."""
        if self.is_busy() or self.workspace is None or not self.adapter_dir:
            return False
        from app.qt.tasks import start_task

        self.message.clear_message()
        self._together_task = start_task(self._teach_on_together(), name="teach on Together")
        self._update_buttons()
        self.busyChanged.emit()
        return True

    async def _teach_on_together(self) -> None:
        from app.tabs.teach_on_together import teach_on_together

        workspace, adapter_dir = self.workspace, self.adapter_dir
        try:
            job_id = await teach_on_together(
                self, workspace, adapter_dir, include_taught=self.include_taught_box.isChecked(),
                read_api_key=self.read_api_key, on_status=self.status.setText,
            )  # fmt: skip
        except CognitiveTwinError as exc:
            self._on_failed(exc)
            return
        finally:
            self.status.setText("")
            self._together_task = None
            self._update_buttons()
            self.busyChanged.emit()
        if job_id is None:
            self.message.show_info("Not launched: nothing was started and nothing was charged.")
            return
        self.message.show_ok(
            f"Teaching job {job_id} started on Together. The Phase 1 tab's job list follows it; when it is done, "
            "the new version is downloaded and appears among your twins (the current one is kept)."
        )
        self.togetherLaunched.emit(job_id)

    def stop(self) -> None:
        if self.job.is_running():
            self.job.cancel()  # the CancelledError that follows ends the job as cancelled
            self.process.request_cancel()
            self.status.setText("Stopping after this step…")

    def _on_event(self, event) -> None:
        if event.kind == "start":
            self.status.setText(f"Teaching: {event.message}")
        elif event.kind == "step":
            self.loss_plot.append(LOSS_SERIES, event.step, event.loss)
            self.margin_plot.append(MARGIN_SERIES, event.step, event.margin)
            margin = f", reward margin {event.margin:+.2f}" if event.margin is not None else ""
            self.status.setText(f"Step {event.step} of {event.total_steps}: loss {event.loss:.3f}{margin}")

    def _on_done(self, result) -> None:
        margin = f" The reward margin ended at {result.margins[-1]:+.2f}." if result.margins else ""
        self.message.show_ok(
            f"A new version of your twin learned from {len(result.feedback_ids)} of your verdicts "
            f"({result.steps} steps).{margin} {result.verdict()} It is now chosen; the previous one is kept."
        )
        self.status.setText("")
        self.taught.emit(str(result.adapter_dir))

    def _on_failed(self, exc) -> None:
        text = str(exc) if isinstance(exc, CognitiveTwinError) else f"Teaching failed unexpectedly ({exc})."
        self.message.show_error(text)
        self.status.setText("")
        self.failed.emit(text)

    def _on_cancelled(self) -> None:
        self.status.setText("Stopped: the twin is as it was. Resume teaching goes on from the step it reached.")

    def _update_buttons(self, *_args) -> None:
        busy = self.is_busy()
        ready = not busy and self.workspace is not None and bool(self.adapter_dir)
        self.teach_button.setEnabled(ready)
        self.resume_button.setVisible(bool(self.stopped_run) and not self.together_job)
        self.resume_button.setEnabled(ready)
        self.stop_button.setVisible(not self.together_job)  # a Together job is cancelled in the Phase 1 tab
        self.stop_button.setEnabled(self.job.is_running())
        self.include_taught_box.setEnabled(not busy)
