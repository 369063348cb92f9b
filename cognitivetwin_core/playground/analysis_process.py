"""The Playground's analysis in a supervised child process that keeps its runs loaded across
requests, so that the window never loads a model or imports torch: the serving protocol of
supervised_child.py, as the chat uses it (chat_process.py).

    process = PlaygroundProcess()
    for message in process.run(PlaygroundTask("analyze", run_dir, workspace_path, request)):
        ...   # LoadProgress, RunLoaded (when the run loaded now), then RequestDone(RunLoaded or AnalysisResult)
    process.request_stop()    # from any thread: ends the task at its next check (CancelledError)
    process.close()

A child that crashed fails its task with one sentence (`ChildCrashedError`); the next task
starts another (which loads its run again).
"""

from __future__ import annotations

from collections.abc import Iterator

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.playground.session import PlaygroundSession, PlaygroundTask, run_task
from cognitivetwin_core.supervised_child import ChildChannel, RequestDone, ServingChild, serve


class PlaygroundProcess(ServingChild):
    """The analysis child (started at the first task, again after a crash), asked one task at a
    time; `request_stop()` ends the task at its next check."""

    def __init__(self):
        super().__init__(
            _serve_playground,
            name="playground",
            what="The analysis process",
            crash_then="; the next analysis starts it again",
        )
        self.loaded: list[tuple] = []  # (run folder, workspace) the child has loaded, oldest first

    def run(self, task: PlaygroundTask) -> Iterator[object]:
        """The task's events, then its `RequestDone` (its result: `RunLoaded` or `AnalysisResult`)."""
        from cognitivetwin_core.playground.session import RUNS_KEPT_LOADED

        key = (str(task.run_dir), str(task.workspace_path))
        for message in self.ask(task):
            if isinstance(message, RequestDone):
                self.loaded = [k for k in self.loaded if k != key][-(RUNS_KEPT_LOADED - 1) :] + [key]
            yield message

    def has_loaded(self, run_dir, workspace_path) -> bool:
        """Whether the child holds this run already (a guess after a crash: it is then empty)."""
        return (str(run_dir), str(workspace_path)) in self.loaded and self.pid is not None

    def close(self, grace_s: float = 10.0) -> None:
        super().close(grace_s)
        self.loaded = []


def _serve_playground(channel: ChildChannel) -> None:
    session = PlaygroundSession()

    def handle(task: PlaygroundTask, cancellation: Cancellation):
        return run_task(channel.send, cancellation, session, task)

    serve(channel, handle)
