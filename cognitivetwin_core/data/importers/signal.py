"""Signal Desktop, exported with sigtop (`sigtop export-messages -f json DIR`).

sigtop writes one file per conversation, named by the recipient: `Alice Smith (+15551234567).json`
for a contact, `Book club (group).json` for a group. Each file is a JSON array of Signal
Desktop's own message objects: `type` ("incoming", "outgoing"; anything else is a group
update, a safety-number change, a call, a timer: skipped), `sent_at` (milliseconds since 1970,
the time; `received_at` is a counter, not a time), `body`, `attachments`, `reactions`,
`editHistory`, `source`/`sourceServiceId` (the sender of an incoming message in a group).
Outgoing messages are the owner's ("Me": the export names no owner). An edited message is one
record whose `body` is the final text. Attachment-only, deleted and view-once messages are
skipped and counted. Each file is streamed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.export_tree import ExportTree
from cognitivetwin_core.data.importers.json_stream import iter_json_records
from cognitivetwin_core.data.importers.messenger import PLACEHOLDER_ROLE, chat_conversations, check_gap_hours
from cognitivetwin_core.data.importers.records import RecordError, message_text
from cognitivetwin_core.data.importers.report import ImportProgress, ImportReport, ProgressCallback, Rejection

NAME = "signal"
TITLE = "Signal Desktop (sigtop JSON export)"
FILE_FILTER = "sigtop JSON (*.json *.zip)"
OWNER = "Me"
MENTION = "\ufffc"

_DETAIL = re.compile(r"^(?P<name>.*?)(?: \((?P<detail>\+?[\d ]+|group)\))?\.json$")


def looks_like_sigtop(head: bytes) -> bool:
    return head.lstrip().startswith(b"[") and b'"sent_at"' in head and b'"conversationId"' in head


def conversation_name(file_name: str) -> tuple[str, bool]:
    """(the recipient's display name, whether it is a group) from sigtop's file name."""
    match = _DETAIL.match(file_name.rsplit("/", 1)[-1])
    if match is None:
        return file_name, False
    return match["name"] or file_name, match["detail"] == "group"


def message_from_record(record, report: ImportReport, partner: str | None) -> Message | None:
    if not isinstance(record, dict):
        raise RecordError(None, f"a message must be an object, got {type(record).__name__}")
    kind = record.get("type")
    if kind not in ("incoming", "outgoing"):
        report.skip("system")
        return None
    if record.get("deletedForEveryone") or record.get("isErased"):
        report.skip("deleted")
        return None
    if record.get("isViewOnce"):
        report.skip("media omitted")
        return None
    # A mention is U+FFFC in the body (the person is in bodyRanges, by id only): left out.
    text = message_text(record, "body")
    if MENTION in text:
        text = "\n".join(" ".join(line.replace(MENTION, " ").split()) for line in text.split("\n")).strip()
    if not text:
        report.skip("media omitted" if record.get("attachments") or record.get("sticker") else "empty")
        return None
    sent_at = record.get("sent_at")
    if isinstance(sent_at, bool) or not isinstance(sent_at, (int, float)):
        raise RecordError("sent_at", "sent_at must be milliseconds since 1970")
    if kind == "outgoing":
        speaker = OWNER
    else:
        speaker = partner
        if speaker is None:
            for key in ("source", "sourceServiceId", "sourceUuid"):
                if isinstance(record.get(key), str) and record[key].strip():
                    speaker = record[key].strip()
                    break
        if speaker is None:
            raise RecordError("source", "an incoming group message names no sender")
    created = datetime.fromtimestamp(sent_at / 1000.0, tz=UTC)
    return Message(role=PLACEHOLDER_ROLE, content=text, created_at=created, speaker=speaker)


def read(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, gap_hours: float | None = None
) -> Iterator[Conversation]:
    gap = check_gap_hours(gap_hours)
    with ExportTree(path) as tree:
        files = [name for name in tree.matching(".json")]
        for number, name in enumerate(files, start=1):
            label = tree.label(name)
            title, group = conversation_name(name)
            partner = None if group else title

            def messages(name=name, label=label, partner=partner) -> Iterator[Message]:
                with tree.open(name) as stream:
                    for index, line, record in iter_json_records(stream, label, report):
                        try:
                            message = message_from_record(record, report, partner)
                        except RecordError as exc:
                            report.reject(Rejection(label, exc.reason, line=line, record=index, field=exc.field))
                            continue
                        if message is not None:
                            yield message

            yield from chat_conversations(
                messages(), source=NAME, chat_key=title, source_id=title, title=title, gap_hours=gap, report=report
            )
            if progress is not None:
                progress(
                    ImportProgress(number, len(files), "files", report.conversations_accepted, report.messages_accepted)
                )
        report.owner = OWNER if OWNER in report.participants else None
        report.owner_marked = report.owner is not None
