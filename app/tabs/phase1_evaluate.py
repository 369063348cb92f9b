"""The Phase 1 controller's Evaluate: the twin against its base on held-out replies, in its own
supervised child (EvaluationProcess), its progress and report relayed as signals (see
phase1_controller.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Slot

from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.phase1.jobs import read_job
from cognitivetwin_core.playground.evaluation_process import EvaluationProcess, EvaluationProgress, EvaluationReport


def phase2_run_for_adapter(workspace, adapter_dir: str | Path) -> str | None:
    """The newest Phase 2 run of the workspace trained on this adapter (its style head scores
    the evaluation's replies); None if there is none."""
    from cognitivetwin_core.phase2.components_folder import holds_components, read_components_config
    from cognitivetwin_core.phase2.runs import list_runs

    wanted = Path(adapter_dir).resolve()
    for record in list_runs(workspace):  # newest first
        folder = record.output_dir
        if not folder or not holds_components(folder):
            continue
        try:
            adapter = read_components_config(folder).get("adapter")
        except CognitiveTwinError:
            continue
        if adapter and Path(adapter).resolve() == wanted:
            return str(folder)
    return None


def run_evaluation(progress, cancelled, process: EvaluationProcess) -> dict:
    """The Evaluate button's job: the twin against its base on held-out replies (evaluation.json),
    computed in the process's child; this thread hands its progress to the GUI."""
    for message in process.run():
        if isinstance(message, EvaluationProgress):
            progress(message.text)
        elif isinstance(message, EvaluationReport):
            return message.report
    raise CognitiveTwinError("The evaluation ended without a report; the log file has the details.")


class Phase1Evaluate:
    """The Evaluate button: a finished job's adapter against its base, in a supervised child."""

    def evaluate(self, job_id: str) -> bool:
        """Evaluate a finished job's adapter against its base, off the GUI thread."""
        workspace = self._require_workspace()
        record = read_job(workspace, job_id)
        adapter = record.adapter_path if record is not None else None
        if not adapter or not Path(adapter).is_dir():
            self.failed.emit("evaluate", f"{job_id} has no adapter on this computer yet: download it first.")
            return False
        if self.evaluate_job.is_running():
            return False
        self.evaluating_job_id = job_id
        run_dir = phase2_run_for_adapter(workspace, adapter)
        self.evaluation_process = EvaluationProcess(
            adapter, workspace.path, model_dir=run_dir, samples=self.evaluation_samples, max_new_tokens=64
        )
        self.evaluate_job.start(run_evaluation, self.evaluation_process)
        self.jobsChanged.emit()
        return True

    @Slot(object)
    def _on_evaluation_progress(self, text) -> None:
        if self.evaluating_job_id:
            self.evaluationProgress.emit(self.evaluating_job_id, str(text))

    @Slot(object)
    def _on_evaluation_done(self, report) -> None:
        if self.evaluating_job_id and not self._closed:
            self.evaluationDone.emit(self.evaluating_job_id, report)

    @Slot(object)
    def _on_evaluation_failed(self, exc) -> None:
        if self._closed:
            return
        message = str(exc) if isinstance(exc, CognitiveTwinError) else f"The evaluation failed unexpectedly ({exc})."
        self.failed.emit("evaluate", message)

    @Slot()
    def _on_evaluation_finished(self) -> None:
        self.evaluating_job_id = None
        if not self._closed:
            self.jobsChanged.emit()
