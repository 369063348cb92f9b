"""Phase 1 chat JSONL: one `{"messages": [{"role", "content"}, ...]}` per line (Together's
conversation format), optionally with `conversation_id`/`id`, `title` and per-message
`created_at` and `patterns`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.data.importers.json_stream import iter_json_lines
from cognitivetwin_core.data.importers.records import RecordError, make_conversation, optional_text, parse_chat_messages
from cognitivetwin_core.data.importers.report import ImportReport, ProgressCallback, Rejection

NAME = "chat-jsonl"
TITLE = "Chat JSONL (Together conversation format)"
FILE_FILTER = "Chat JSONL (*.jsonl *.jsonl.txt)"


def conversation_from_record(record, source: str, id_prefix: str) -> Conversation:
    if not isinstance(record, dict):
        raise RecordError(None, f"a record must be a JSON object, got {type(record).__name__}")
    messages = parse_chat_messages(record.get("messages"))
    record_id = optional_text(record, "conversation_id") or optional_text(record, "id")
    return make_conversation(record_id, source, messages, title=optional_text(record, "title"), id_prefix=id_prefix)


def read(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, source: str = NAME
) -> Iterator[Conversation]:
    label = str(path)
    with open(path, "rb") as stream:
        for line, record in iter_json_lines(stream, label, report, progress):
            try:
                conversation = conversation_from_record(record, source, Path(path).stem)
            except RecordError as exc:
                report.reject(Rejection(label, exc.reason, line=line, field=exc.field))
                continue
            report.accept(len(conversation.messages))
            yield conversation
