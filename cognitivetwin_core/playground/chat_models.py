"""What the chat has loaded and the work of one chat turn (Qt-free): the twin, the scorer and
the judge, kept between replies, and the typed events a turn reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.playground.chat_request import ChatRequest


class ChatModels:
    """What the chat has loaded (Qt-free; used by one job at a time): the twin and the scorer."""

    def __init__(self):
        self.twin = None
        self.twin_key: tuple | None = None
        self.scorer = None
        self.scorer_key: str | None = None
        self.person_judge = None
        self.person_judge_key: tuple | None = None
        self.session = None

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


def run_chat_turn(progress, cancelled, models: ChatModels, request: ChatRequest):
    """The job: load what is needed, then the twin's (and the base's) reply, scored."""
    models.prepare(
        request.adapter_dir, request.base_model, request.run_dir, progress, request.workspace, request.memory
    )
    session = models.session
    session.system_prompt = request.system_prompt
    session.settings = request.settings
    progress(ChatStatus("The twin is writing…"))
    return session.send(
        request.text,
        compare_base=request.compare_base,
        on_text=lambda who, piece: progress(ChatText(who, piece)),
        cancellation=Cancellation(also_when=cancelled),
        on_remembered=lambda items: progress(ChatRemembered(items)),
    )
