"""The before/after comparison of a taught twin (judges/teach_comparison.py) in a supervised
child process, so the window never loads a model or imports torch (supervised_child.py; the
same protocol as evaluation_process.py).

    process = TeachComparisonProcess(before_dir, after_dir, workspace_path, max_examples=8)
    for message in process.run():     # ComparisonProgress(text)..., then ComparisonReport(report)
        ...
    process.request_cancel()          # from any thread
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.supervised_child import ChildChannel, SupervisedChild


@dataclass(frozen=True)
class ComparisonProgress:
    text: str  # what the comparison is doing, in words


@dataclass(frozen=True)
class ComparisonReport:
    report: dict  # as compare_versions returns it (also saved as teach_comparison.json)


class TeachComparisonProcess:
    """One `compare_versions` call (keyword options as it takes them) in a spawned child."""

    def __init__(self, before_dir: str | Path, after_dir: str | Path, workspace_path: str | Path, **options):
        self.child = SupervisedChild(
            _compare_in_child,
            (str(before_dir), str(after_dir), str(workspace_path), options),
            name="teach-comparison",
            what="The comparison process",
        )

    def request_cancel(self) -> None:
        self.child.request_cancel()

    def run(self) -> Iterator[ComparisonProgress | ComparisonReport]:
        yield from self.child.events()


def _compare_in_child(channel: ChildChannel, before: str, after: str, workspace_path: str, options: dict) -> None:
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.playground.judges.teach_comparison import compare_versions

    with Workspace.open(Path(workspace_path)) as workspace:
        report = compare_versions(
            before,
            after,
            workspace=workspace,
            progress=lambda text: channel.send(ComparisonProgress(text)),
            cancellation=channel.cancellation,
            **options,
        )
    channel.send(ComparisonReport(report))
