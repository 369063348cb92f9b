"""What the chat has loaded and the work of one chat turn, in the chat's child process
(chat_process.py): the twin, the scorer, the judge and the workspace, kept between replies;
the typed events a turn reports; and the `ChatAnswer` it ends with.
"""

from __future__ import annotations

from dataclasses import dataclass

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.playground.chat_request import ChatRequest


class ChatModels:
    """What the chat has loaded (used by one turn at a time): the twin, the scorer, the judge."""

    def __init__(self):
        self.workspace = None  # opened here from its path: an open one cannot cross processes
        self.twin = None
        self.twin_key: tuple | None = None
        self.scorer = None
        self.scorer_key: str | None = None
        self.person_judge = None
        self.person_judge_key: tuple | None = None
        self.session = None

    def open_workspace(self, path: str | None):
        """The workspace at `path` (None: none), opened once and kept."""
        if self.workspace is not None and (path is None or str(self.workspace.path) != path):
            self.workspace.close()
            self.workspace = None
        if path is not None and self.workspace is None:
            from pathlib import Path

            from cognitivetwin_core.data.workspace import Workspace

            self.workspace = Workspace.open(Path(path))
        return self.workspace

    def prepare(
        self, adapter_dir: str, base_model: str | None, run_dir: str | None, progress, workspace=None, memory=False
    ) -> None:
        from cognitivetwin_core.playground.chat import ChatSession, ReplyScorer, load_twin, workspace_memory

        key = (adapter_dir, base_model)
        if self.twin_key != key:
            progress(ChatStatus("Loading the twin (the base and your adapter)…"))
            self.twin, self.twin_key, self.session = None, None, None
            self.twin = load_twin(adapter_dir, base_model)
            self.twin_key = key
        if run_dir != self.scorer_key:
            self.scorer, self.scorer_key = None, None
            if run_dir:
                progress(ChatStatus("Loading the Phase 2 run for the scores…"))
                self.scorer = ReplyScorer.for_run(run_dir)
                self.scorer_key = run_dir
        judge_key = (adapter_dir, str(workspace.path) if workspace is not None else None)
        if judge_key != self.person_judge_key:
            self.person_judge, self.person_judge_key = None, None
            if workspace is not None:
                from cognitivetwin_core.playground.judges.sounds_like_you import PersonJudge

                progress(ChatStatus("Fitting the judge of how much a reply sounds like you…"))
                self.person_judge = PersonJudge.for_adapter(adapter_dir, workspace)
                self.person_judge_key = judge_key
        if self.session is None:
            self.session = ChatSession(self.twin)
        self.session.scorer = self.scorer
        judge = self.person_judge
        self.session.person_judge = judge if judge is not None and judge.reliable else None
        self.session.memory = workspace_memory(workspace) if memory and workspace is not None else None


# What `run_chat_turn` reports to its `progress` (typed, never tuples told apart by their first item).


@dataclass(frozen=True)
class ChatStatus:
    """What the worker is doing, in words for the person."""

    text: str


@dataclass(frozen=True)
class ChatText:
    """A piece of a reply as it is written; `who` is TWIN or BASE."""

    who: str
    piece: str


@dataclass(frozen=True)
class ChatRemembered:
    """The past messages the memory put in the prompt."""

    items: list


@dataclass(frozen=True)
class ChatTurnWork:
    """A turn as it crosses to the chat's child: the request (its workspace as a path) and the
    conversation so far (kept by the window, so a restarted child goes on with it)."""

    request: ChatRequest
    workspace_path: str | None = None
    turns: tuple = ()


@dataclass(frozen=True)
class ChatAnswer:
    """A turn's end: the ChatTurn (scores included) and what the window shows beside it."""

    turn: object  # playground.chat.ChatTurn
    base_model: str = ""
    scorer_note: str = ""  # why the scorer gives no "style closeness" ("" when it does)
    judge_note: str | None = None  # the "sounds like you" judge's range in words (None: no judge)
    judge_reliable: bool = False


def run_chat_turn(progress, cancellation: Cancellation, models: ChatModels, work: ChatTurnWork) -> ChatAnswer:
    """One turn, in the child: load what is needed, then the twin's (and the base's) reply, scored."""
    request = work.request
    workspace = models.open_workspace(work.workspace_path)
    models.prepare(request.adapter_dir, request.base_model, request.run_dir, progress, workspace, request.memory)
    session = models.session
    session.turns = list(work.turns)
    session.system_prompt = request.system_prompt
    session.settings = request.settings
    progress(ChatStatus("The twin is writing…"))
    turn = session.send(
        request.text,
        compare_base=request.compare_base,
        on_text=lambda who, piece: progress(ChatText(who, piece)),
        cancellation=cancellation,
        on_remembered=lambda items: progress(ChatRemembered(items)),
    )
    judge = models.person_judge
    return ChatAnswer(
        turn,
        base_model=models.twin.base_model,
        scorer_note=models.scorer.unavailable if models.scorer is not None else "",
        judge_note=judge.note if judge is not None else None,
        judge_reliable=bool(judge is not None and judge.reliable),
    )
