"""The Phase 2 tab's run control: Start (the whole workspace or one source), Stop & save, Cancel,
the run's data selection recorded in its workspace, and closing the window during a run (see
phase2_tab.py).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox, QWidget

from app.tabs.phase2_form import DATA_ALL
from app.tabs.phase2_runs_panel import Phase2RunsPanel, read_runs  # noqa: F401 - read_runs: the tab's API
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.phase2.runs import new_run_dir

log = logging.getLogger(__name__)


class Phase2RunControl:
    """Start, Stop & save, Cancel, and closing the window during a run."""

    def confirm_close(self) -> bool:
        """The window asks before closing: True to close now. During a run the user is asked
        (without a nested event loop) to stop & save, discard, or keep training; the window
        closes itself once the training thread has ended."""
        if not self.controller.is_running():
            return True
        if not self._close_when_done and not self._close_question_open:
            self._close_question_open = True
            self.ask_close(self, self._close_answered)
        return False

    def _close_answered(self, choice: str) -> None:
        self._close_question_open = False
        if choice not in ("stop", "discard"):
            return
        if not self.controller.is_running():  # the run ended while the question was open
            QTimer.singleShot(0, self.window().close)
            return
        self._close_when_done = True
        if choice == "discard":
            self.cancel()
        else:
            self.stop_and_save()
        self.message.show_info("Finishing the Phase 2 run before the window closes…")

    @staticmethod
    def ask_close(parent: QWidget, answer) -> None:
        """Ask, then call `answer("stop" | "discard" | "keep")` (tests replace this).

        `open()`, not `exec()`: a nested event loop inside the qasync loop breaks running
        tasks (docs/qt.md §11). The box stays owned by `parent` (no deleteLater, §6)."""
        box = QMessageBox(parent)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Phase 2 is training")
        box.setText("A Phase 2 run is still training. Stop it and save the model before closing?")
        box.setInformativeText("A stopped run can be resumed later from the Runs list.")
        stop = box.addButton("Stop && save", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard the run", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Keep training", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stop)

        def finished(_result: int) -> None:
            clicked = box.clickedButton()
            answer("stop" if clicked is stop else "discard" if clicked is discard else "keep")

        box.finished.connect(finished)
        box.open()

    def start(self) -> bool:
        """Start a run with the settings shown; False (with a message) when it cannot."""
        if self.controller.is_running():
            return False
        if self.workspace is None:
            self.message.show_error("Open a workspace first (File ▸ Open workspace…).")
            return False
        if self.memory_verdict.fits is False:  # the base would not fit: say so rather than be killed
            self.message.show_error(self.memory_verdict.verdict.text)
            return False
        selection = self.data_combo.currentData() or {"kind": DATA_ALL}
        try:
            config = self.build_config()
        except CognitiveTwinError as exc:  # settings the form allows but a run refuses
            self.message.show_error(str(exc))
            return False
        return self._launch(config, selection)

    def _launch(self, config, selection: dict) -> bool:
        """Start `config` on the open workspace: all of it, or one source (the child reads the
        conversations; this thread never does)."""
        self.message.clear_message()
        processes = self._chosen_device()[1] if config.device == "cuda" else 1
        self._run_workspace = self.workspace
        if selection.get("kind") == "source":
            config = replace(
                config,
                source=selection["source"],
                output_dir=config.output_dir or str(self._new_output_dir()),
            )
            self._pending_selection = selection
        else:
            self._pending_selection = None
        return self.controller.start(config, workspace=self.workspace, processes=processes)

    def _new_output_dir(self) -> Path:
        return new_run_dir(self.workspace.runs_dir)

    def stop_and_save(self) -> None:
        if self.controller.is_running():
            self.controller.request_stop(save=True)
            self.phase_label.setText("Stopping: finishing the step and saving…")
            self.stop_button.setEnabled(False)
            self.cancel_button.setEnabled(False)

    def cancel(self) -> None:
        if self.controller.is_running():
            self.controller.request_cancel()
            self.phase_label.setText("Cancelling: discarding the run…")
            self.stop_button.setEnabled(False)
            self.cancel_button.setEnabled(False)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        for widget in (
            self.base_combo,
            self.adapter_combo,
            self.data_combo,
            self.epochs_spin,
            self.batch_spin,
            self.lr_spin,
            self.accumulation_spin,
            self.plan_spin,
            self.patience_spin,
            self.device_combo,
        ):
            widget.setEnabled(not running)
        self._runs_selection_changed()

    def _record_selection(self) -> None:
        """A run on one source: remember which, so the Runs list can resume it."""
        if self._selection_recorded:
            return
        trainer = self.controller.trainer
        if trainer is None or trainer.run_id is None:
            return
        self._selection_recorded = True
        if self._pending_selection is not None:
            self._record_in_run_workspace(
                trainer.run_id,
                {"studio_data_selection": self._pending_selection, "output_dir": str(trainer.output_dir)},
            )

    def _record_in_run_workspace(self, run_id: str, fields: dict) -> None:
        workspace = getattr(self, "_run_workspace", None)
        if workspace is None:
            return
        try:
            workspace.upsert_phase2_run(run_id, fields)
        except Exception:  # the window may have closed that workspace since; run.json has it all
            log.warning("could not record Phase 2 run %s in %s", run_id, workspace.path, exc_info=True)

    def _on_running_changed(self, running: bool) -> None:
        self._set_running(running)
        if not running and self._close_when_done:
            self._close_when_done = False
            window = self.window()
            if window is not self:
                QTimer.singleShot(0, window.close)
