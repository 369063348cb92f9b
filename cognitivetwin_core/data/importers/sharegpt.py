"""ShareGPT JSON: a list of `{"id", "conversations": [{"from", "value"}, ...]}`.

Real dumps are hundreds of megabytes and often cut off mid-file, so the list is read one
record at a time (json_stream) and a truncated file keeps every complete record before
the break. Speakers are mapped (human/user, gpt/chatgpt/bing/bard/assistant, system,
tool/function...); any other speaker rejects its record with the field that holds it.
A `.jsonl` file with one such record per line is read too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.json_stream import iter_json_lines, iter_json_records
from cognitivetwin_core.data.importers.records import (
    ROLE_ALIASES,
    RecordError,
    check_text,
    make_conversation,
    optional_text,
    parse_time,
)
from cognitivetwin_core.data.importers.report import ImportReport, ProgressCallback, Rejection

NAME = "sharegpt"
TITLE = "ShareGPT JSON"
FILE_FILTER = "ShareGPT JSON (*.json *.jsonl)"

_KNOWN_SPEAKERS = ", ".join(sorted(ROLE_ALIASES))


def conversation_from_record(record, id_prefix: str) -> Conversation:
    if not isinstance(record, dict):
        raise RecordError(None, f"a record must be a JSON object, got {type(record).__name__}")
    turns = record.get("conversations")
    key = "conversations"
    if turns is None and "items" in record:
        turns, key = record["items"], "items"
    if turns is None:
        raise RecordError("conversations", "missing conversations")
    if not isinstance(turns, list):
        raise RecordError("conversations", f"conversations must be a list, got {type(turns).__name__}")
    if not turns:
        raise RecordError("conversations", "empty conversation (no messages)")
    messages: list[Message] = []
    system = record.get("system")
    if isinstance(system, str) and system.strip():
        messages.append(Message(role="system", content=check_text(system, "system")))
    aliases = ROLE_ALIASES
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(f"{key}[{index}]", f"a turn must be an object, got {type(turn).__name__}")
        speaker = turn.get("from")
        if speaker is None:
            speaker = turn.get("role")
        if not isinstance(speaker, str):
            raise RecordError(
                f"{key}[{index}].from",
                "missing speaker" if speaker is None else f"from must be a string, got {type(speaker).__name__}",
            )
        role = aliases.get(speaker.strip().lower())
        if role is None:
            raise RecordError(
                f"{key}[{index}].from", f"unknown speaker {speaker!r} (expected one of: {_KNOWN_SPEAKERS})"
            )
        value = turn["value"] if "value" in turn else turn.get("content")
        content = check_text(value, f"{key}[{index}].value")
        created_at = parse_time(turn.get("timestamp"), f"{key}[{index}].timestamp") if "timestamp" in turn else None
        messages.append(Message(role=role, content=content, created_at=created_at))
    return make_conversation(
        optional_text(record, "id"), NAME, messages, title=optional_text(record, "title"), id_prefix=id_prefix
    )


def read(path: Path, report: ImportReport, progress: ProgressCallback | None = None) -> Iterator[Conversation]:
    label = str(path)
    prefix = Path(path).stem
    with open(path, "rb") as stream:
        if str(path).endswith(".jsonl"):
            records = ((line, line, record) for line, record in iter_json_lines(stream, label, report, progress))
            by_line = True
        else:
            records = iter_json_records(stream, label, report, progress)
            by_line = False
        for index, line, record in records:
            try:
                conversation = conversation_from_record(record, prefix)
            except RecordError as exc:
                report.reject(
                    Rejection(label, exc.reason, line=line, record=None if by_line else index, field=exc.field)
                )
                continue
            report.accept(len(conversation.messages))
            yield conversation
