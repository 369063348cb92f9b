"""The chat in a supervised child process that stays alive across turns, so that the window
never loads a model or imports torch, and the twin is loaded once, not per reply: the serving
protocol of supervised_child.py (one protocol with local LoRA, Phase 2 and evaluation).

    chat = ChatProcess()
    for message in chat.turn(request, turns):   # ChatStatus, ChatRemembered, ChatText..., then ChatAnswer
        ...
    chat.request_stop()                         # from any thread: ends the reply being written
    chat.close()                                # ends the child (it also dies with its parent)

The window keeps the conversation (`turns`, the ChatTurns so far) and sends it with each
request, so a child that crashed, whose turn failed with one sentence (`ChildCrashedError`),
is replaced at the next turn and goes on with the same conversation. `turn` raises what the
turn raised in the child (an error for the user), and the child lives on.
"""

from __future__ import annotations

from collections.abc import Iterator

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.playground.chat_models import ChatAnswer, ChatModels, ChatTurnWork, run_chat_turn
from cognitivetwin_core.playground.chat_request import ChatRequest
from cognitivetwin_core.supervised_child import ChildChannel, RequestDone, ServingChild, serve

CRASH_THEN = "; your next message starts it again"


class ChatProcess(ServingChild):
    """The chat's child (started at the first turn, restarted after a crash), asked one turn at a
    time; `request_stop()` ends the reply being written (it keeps what was written)."""

    def __init__(self):
        super().__init__(_serve_chat, name="chat", what="The chat process", crash_then=CRASH_THEN)

    def turn(self, request: ChatRequest, turns=()) -> Iterator[object]:
        """The events of one turn in the child, the last a `ChatAnswer`."""
        workspace = request.workspace
        work = ChatTurnWork(
            _without_workspace(request),
            str(workspace.path) if workspace is not None else None,
            tuple(turns),
        )
        for message in self.ask(work):
            yield message.result if isinstance(message, RequestDone) else message


def _without_workspace(request: ChatRequest) -> ChatRequest:
    from dataclasses import replace

    return replace(request, workspace=None)  # an open workspace cannot cross processes


def _serve_chat(channel: ChildChannel) -> None:
    models = ChatModels()

    def handle(work: ChatTurnWork, cancellation: Cancellation) -> ChatAnswer:
        return run_chat_turn(channel.send, cancellation, models, work)

    serve(channel, handle)
