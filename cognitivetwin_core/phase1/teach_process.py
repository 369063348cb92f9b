"""Teaching the twin from feedback (teach.py) in a supervised child process, so that the
window never loads a model or imports torch: the protocol of supervised_child.py, as local
LoRA, evaluation and the chat use it.

    process = TeachProcess(workspace_path, adapter_dir, max_steps=3)
    for message in process.run():     # TeachEvent..., then TeachDone(result)
        ...
    process.request_cancel()          # from any thread: stops between steps

`run()` raises what teaching raised (a user's error; `CancelledError` after a cancel, the
twin as it was) and `ChildCrashedError` with one sentence when the child was killed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.supervised_child import ChildChannel, SupervisedChild


@dataclass(frozen=True)
class TeachDone:
    result: object  # teach.TeachResult: the new version of the twin


class TeachProcess:
    """One `teach_twin` run on the workspace at `workspace_path` in a spawned child."""

    def __init__(self, workspace_path: str | Path, adapter_dir: str | Path, **options):
        """`options`: teach_twin's keyword arguments (max_steps, resume, include_taught, ...)."""
        self.child = SupervisedChild(
            _teach_in_child,
            (str(workspace_path), str(adapter_dir), options),
            name="teach",
            what="The teaching process",
        )

    def request_cancel(self) -> None:
        self.child.request_cancel()

    def kill(self) -> None:
        """End the child now (it did not stop when asked): the run fails as crashed."""
        self.child.kill()

    @property
    def pid(self) -> int | None:
        return self.child.pid

    def run(self) -> Iterator[object]:
        yield from self.child.events()


def _teach_in_child(channel: ChildChannel, workspace_path: str, adapter_dir: str, options: dict) -> None:
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.phase1.teach import teach_twin

    with Workspace.open(Path(workspace_path)) as workspace:
        result = teach_twin(workspace, adapter_dir, on_event=channel.send, cancellation=channel.cancellation, **options)
    channel.send(TeachDone(result))
