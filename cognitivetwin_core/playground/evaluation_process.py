"""The evaluation of an adapter (evaluation.py) in a supervised child process, so that the
caller (the window) never loads a model or imports torch: the protocol of
supervised_child.py, as local LoRA and Phase 2 use it.

    process = EvaluationProcess(adapter_dir, workspace_path, model_dir=run_dir, samples=4)
    for message in process.run():     # EvaluationProgress(text)..., then EvaluationReport(report)
        ...
    process.request_cancel()          # from any thread: stops between generated tokens

`run()` raises what the evaluation raised (a user's error; `CancelledError` after a cancel)
and `ChildCrashedError` with one sentence when the child was killed or ran out of memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.supervised_child import ChildChannel, SupervisedChild


@dataclass(frozen=True)
class EvaluationProgress:
    text: str  # what the evaluation is doing, in words


@dataclass(frozen=True)
class EvaluationReport:
    report: dict  # as evaluate_adapter returns it (also saved as evaluation.json)


class EvaluationProcess:
    """One `evaluate_adapter` call (keyword options as it takes them) in a spawned child."""

    def __init__(self, adapter_dir: str | Path, workspace_path: str | Path | None = None, **options):
        self.child = SupervisedChild(
            _evaluate_in_child,
            (str(adapter_dir), str(workspace_path) if workspace_path else None, options),
            name="evaluation",
            what="The evaluation process",
        )

    def request_cancel(self) -> None:
        self.child.request_cancel()

    @property
    def pid(self) -> int | None:
        return self.child.pid

    def run(self) -> Iterator[EvaluationProgress | EvaluationReport]:
        yield from self.child.events()


def _evaluate_in_child(channel: ChildChannel, adapter_dir: str, workspace_path: str | None, options: dict) -> None:
    from cognitivetwin_core.playground.evaluation import evaluate_adapter

    def evaluate(workspace) -> dict:
        return evaluate_adapter(
            adapter_dir,
            workspace=workspace,
            progress=lambda text: channel.send(EvaluationProgress(text)),
            cancellation=channel.cancellation,  # any stop or cancel request
            **options,
        )

    if workspace_path is None:
        report = evaluate(None)
    else:
        from cognitivetwin_core.data.workspace import Workspace

        with Workspace.open(Path(workspace_path)) as workspace:
            report = evaluate(workspace)
    channel.send(EvaluationReport(report))
