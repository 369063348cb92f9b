"""Phase 2 trajectory JSONL, the seed's format: one line per message with its context,
`{"conversation_id", "messages": [context..., message], "trajectory": {"coordinates": [5],
"phase_id", "homogeneity", "turn_index"}}`. The lines of one conversation are merged
back into it wherever they are in the file (a first pass notes each conversation's last
line, so only conversations whose lines are still to come are held in memory); the given trajectory values are kept on their messages (the
annotator keeps them unless asked to recompute). A line may also carry a whole
conversation with a list of trajectories, one per message."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.json_stream import iter_json_lines
from cognitivetwin_core.data.importers.records import RecordError, make_conversation, optional_text, parse_chat_messages
from cognitivetwin_core.data.importers.report import ImportReport, ProgressCallback, Rejection

NAME = "trajectory-jsonl"
TITLE = "Trajectory JSONL (Phase 2 seed format)"
FILE_FILTER = "Trajectory JSONL (*.jsonl)"


def _number(value, field: str, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordError(field, f"must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise RecordError(field, f"{value!r} is outside [{low}, {high}]")
    return float(value)


def parse_trajectory(value, field: str, default_turn: int) -> dict:
    if not isinstance(value, dict):
        raise RecordError(field, f"trajectory must be an object, got {type(value).__name__}")
    coordinates = value.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) != 5:
        raise RecordError(f"{field}.coordinates", "coordinates must be a list of 5 numbers")
    coordinates = [_number(item, f"{field}.coordinates[{i}]", low=0.0, high=1.0) for i, item in enumerate(coordinates)]
    phase_id = value.get("phase_id")
    if isinstance(phase_id, bool) or not isinstance(phase_id, int) or not 0 <= phase_id <= 5:
        raise RecordError(f"{field}.phase_id", f"phase_id must be an integer 0-5, got {phase_id!r}")
    homogeneity = _number(value.get("homogeneity", coordinates[2]), f"{field}.homogeneity", low=0.0, high=1.0)
    turn_index = value.get("turn_index", default_turn)
    if isinstance(turn_index, bool) or not isinstance(turn_index, int) or turn_index < 0:
        raise RecordError(f"{field}.turn_index", f"turn_index must be a non-negative integer, got {turn_index!r}")
    return {"coordinates": coordinates, "phase_id": phase_id, "homogeneity": homogeneity, "turn_index": turn_index}


class _Pending:
    def __init__(self, conversation_id: str | None, title: str | None, line: int):
        self.conversation_id = conversation_id
        self.title = title
        self.line = line
        self.messages: list[Message] = []
        self.trajectories: dict[int, dict] = {}


def _same(a: Message, b: Message) -> bool:
    return a.role == b.role and a.content == b.content


def _conversation_id(record) -> str | None:
    if not isinstance(record, dict):
        return None
    try:
        return optional_text(record, "conversation_id") or optional_text(record, "id")
    except RecordError:
        return None


def _last_lines(path: Path) -> dict[str, int]:
    """Each conversation id's last line in the file (bad lines are reported by the real pass)."""
    last: dict[str, int] = {}
    with open(path, "rb") as stream:
        for line, record in iter_json_lines(stream, str(path), ImportReport(str(path), NAME)):
            conversation_id = _conversation_id(record)
            if conversation_id is not None:
                last[conversation_id] = line
    return last


def read(path: Path, report: ImportReport, progress: ProgressCallback | None = None) -> Iterator[Conversation]:
    label = str(path)
    prefix = Path(path).stem
    last_lines = _last_lines(Path(path))
    open_conversations: dict[str, _Pending] = {}  # by id, in order of their first line

    def finish(item: _Pending) -> Conversation | None:
        for turn_index, trajectory in item.trajectories.items():
            if turn_index < len(item.messages):
                item.messages[turn_index].trajectory = trajectory
        conversation = make_conversation(item.conversation_id, NAME, item.messages, title=item.title, id_prefix=prefix)
        report.accept(len(conversation.messages))
        return conversation

    with open(path, "rb") as stream:
        for line, record in iter_json_lines(stream, label, report, progress):
            try:
                if not isinstance(record, dict):
                    raise RecordError(None, f"a record must be a JSON object, got {type(record).__name__}")
                messages = parse_chat_messages(record.get("messages"))
                conversation_id = optional_text(record, "conversation_id") or optional_text(record, "id")
                raw = record.get("trajectory")
                if raw is None:
                    raise RecordError("trajectory", "missing trajectory")
                if isinstance(raw, list):
                    if len(raw) != len(messages):
                        raise RecordError("trajectory", f"{len(raw)} trajectories for {len(messages)} messages")
                    trajectories = {i: parse_trajectory(item, f"trajectory[{i}]", i) for i, item in enumerate(raw)}
                else:
                    trajectory = parse_trajectory(raw, "trajectory", len(messages) - 1)
                    if trajectory["turn_index"] >= len(messages):
                        raise RecordError(
                            "trajectory.turn_index",
                            f"turn_index {trajectory['turn_index']} is past the {len(messages)} messages of the line",
                        )
                    trajectories = {trajectory["turn_index"]: trajectory}
                pending = open_conversations.get(conversation_id) if conversation_id is not None else None
                if pending is not None:
                    shared = min(len(messages), len(pending.messages))
                    for index in range(shared):
                        if not _same(messages[index], pending.messages[index]):
                            raise RecordError(
                                f"messages[{index}]",
                                "differs from the same message on line "
                                f"{pending.line} of conversation {conversation_id!r}",
                            )
            except RecordError as exc:
                report.reject(Rejection(label, exc.reason, line=line, field=exc.field))
                continue
            if pending is None:
                pending = _Pending(
                    conversation_id,
                    optional_text(record, "title") if isinstance(record.get("title"), str) else None,
                    line,
                )
                if conversation_id is not None:
                    open_conversations[conversation_id] = pending
            if len(messages) > len(pending.messages):
                pending.messages = messages
            pending.trajectories.update(trajectories)
            if conversation_id is None or last_lines.get(conversation_id, line) <= line:
                open_conversations.pop(conversation_id, None)
                yield finish(pending)
    # Conversations whose last line was rejected.
    for pending in open_conversations.values():
        yield finish(pending)
