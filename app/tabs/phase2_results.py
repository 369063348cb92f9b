"""The Phase 2 tab's results: at a run's end the summary card (did each head beat its baseline,
where the model was saved) and the message in words, laid out in one pass and repainted a plot
per turn of the event loop (see phase2_tab.py).
"""

from __future__ import annotations

from PySide6.QtCore import QTimer

from app.tabs.phase2_runs_panel import Phase2RunsPanel, read_runs  # noqa: F401 - read_runs: the tab's API
from app.widgets.run_summary_card import without_run_folder


class Phase2Results:
    """The end of a run: the summary card and the message with its verdict, shown without stalling
    the window."""

    def _on_finished(self, finished) -> None:
        self._forget_steps()
        self._clock.stop()
        self._tick()
        self._eta = None
        self.eta_label.setText("ETA –")
        self._ensure_plots()
        # Not flush(): the redraw queue draws the three plots on successive ticks, not at once.
        for plot in (self.loss_plot, self.metrics_plot, self.throughput_plot):
            plot.request_redraw()
        trainer = self.controller.trainer
        if trainer is not None and trainer.run_id and self._pending_selection is not None:
            # The core records only workspace-wide runs in the workspace; record this one too.
            self._record_in_run_workspace(
                trainer.run_id, {**trainer.run_record, "studio_data_selection": self._pending_selection}
            )
        self.phase_label.setText(f"Finished: {finished.outcome}")
        self.phase_progress.setRange(0, 1)
        self.phase_progress.setValue(1 if finished.outcome == "completed" else 0)
        self.eta_label.setText("ETA –")
        self.refresh_runs()  # now: the window may close this workspace once the run has ended
        # The summary card and the message change the layout, and showing a widget lays out
        # its parents at once, plots included: both are shown under one layout pass, on the
        # next turn of the event loop. The resized plots then repaint one per turn (three at
        # once took 60-100 ms), and `runFinished` comes last, with everything shown
        # (docs/gui-responsiveness.md).
        later = (self.metrics_plot, self.throughput_plot)
        self._in_turns(
            lambda: self._show_result(finished, repaint_later=later),
            *(lambda plot=plot: plot.setUpdatesEnabled(True) for plot in later),
            lambda: self.runFinished.emit(finished),
        )

    def _show_result(self, finished, repaint_later=()) -> None:
        for plot in repaint_later:
            plot.setUpdatesEnabled(False)
        layouts = [self.layout(), self.summary.parentWidget().layout()]
        for layout in layouts:
            layout.setEnabled(False)
        try:
            self.summary.show_result(finished)
            self._show_outcome(finished)
        finally:
            for layout in reversed(layouts):
                layout.setEnabled(True)
            self.layout().activate()

    def _in_turns(self, *steps) -> None:
        if steps:
            QTimer.singleShot(0, self, lambda: (steps[0](), self._in_turns(*steps[1:])))

    def _show_outcome(self, finished) -> None:
        text = without_run_folder(finished.message, finished.output_dir)
        if finished.outcome == "failed":
            self.message.show_error(text)
        elif finished.outcome in ("completed", "stopped"):
            self.message.show_ok(text)
        else:
            self.message.show_info(text)
        self.message.setToolTip(f"Its folder: {finished.output_dir}" if finished.output_dir else "")

    def _on_failed(self, message: str) -> None:
        self._forget_steps()
        self._clock.stop()
        self.phase_label.setText("Not running.")
        self.phase_progress.setRange(0, 1)
        self.phase_progress.setValue(0)
        self.message.show_error(message)
        self.refresh_runs()
