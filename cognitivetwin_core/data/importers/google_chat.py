"""Google Chat, from Google Takeout (`Takeout/Google Chat/`).

    Groups/DM <id>/messages.json      {"messages": [{"creator": {"name", "email", "user_type"},
                                        "created_date", "text", "topic_id", "message_id",
                                        "attached_files"?, "message_state"?}]}
    Groups/DM <id>/group_info.json    {"members": [{"name", "email", "user_type"}], "name"?}
    Groups/Space <id>/...             the same for a space (group_info has its "name")
    Users/User <id>/user_info.json    {"user": {"name", "email", "user_type"}, ...}: the owner

`created_date` is English locale text such as "Wednesday, March 6, 2024 at 2:15:07 PM UTC",
with a narrow no-break space (U+202F) before AM/PM in recent exports. Messages are listed
oldest first. Deleted messages and attachment-only ones are skipped and counted; a quoted
reply keeps only the new text (Takeout keeps the quote in `quoted_message_metadata`). Each
messages.json is streamed (Telegram's incremental walker).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.export_tree import ExportTree, load_json
from cognitivetwin_core.data.importers.messenger import (
    PLACEHOLDER_ROLE,
    chat_conversations,
    check_gap_hours,
    message_ticker,
)
from cognitivetwin_core.data.importers.records import RecordError, message_text
from cognitivetwin_core.data.importers.report import ImportProgress, ImportReport, ProgressCallback, Rejection
from cognitivetwin_core.data.importers.telegram import _chat_messages, _Malformed, _report_break, _Walker

NAME = "google-chat"
TITLE = "Google Chat (Takeout folder or .zip)"
FILE_FILTER = "Google Takeout (*.zip *.json)"

_MESSAGES = re.compile(r"(?:^|/)Groups/(?P<group>[^/]+)/messages\.json$")
_DATE = re.compile(
    r"^(?:[A-Za-z]+, )?(?P<month>[A-Za-z]+) (?P<day>\d{1,2}), (?P<year>\d{4})(?: at|,) "
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s?(?P<ampm>[AaPp][Mm])?\s*(?P<zone>.*)$"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}
# Zone names Takeout writes; an offset ("GMT+02:00", "UTC-5") is read as written.
_ZONES = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "PST": -8,
    "PDT": -7,
    "MST": -7,
    "MDT": -6,
    "CST": -6,
    "CDT": -5,
    "EST": -5,
    "EDT": -4,
    "CET": 1,
    "CEST": 2,
    "BST": 1,
    "IST": 5.5,
    "JST": 9,
}
_OFFSET = re.compile(r"^(?:UTC|GMT)(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?$")


def parse_created_date(value) -> datetime:
    """Takeout's locale date ("Wednesday, March 6, 2024 at 2:15:07\u202fPM UTC") as a time."""
    if not isinstance(value, str):
        raise RecordError("created_date", "missing created_date")
    text = value.replace("\u202f", " ").replace("\u00a0", " ").strip()
    match = _DATE.match(text)
    month = _MONTHS.get(match["month"].lower()) if match else None
    if match is None or month is None:
        raise RecordError(
            "created_date", f"created_date {value!r} is not like 'Wednesday, March 6, 2024 at 2:15:07 PM UTC'"
        )
    hour = int(match["hour"])
    if match["ampm"]:
        hour = hour % 12 + (12 if match["ampm"].lower() == "pm" else 0)
    zone_text = match["zone"].strip()
    if zone_text in _ZONES:
        zone = timezone(timedelta(hours=_ZONES[zone_text]))
    elif (offset := _OFFSET.match(zone_text)) is not None:
        minutes = int(offset["hours"]) * 60 + int(offset["minutes"] or 0)
        zone = timezone(timedelta(minutes=minutes if offset["sign"] == "+" else -minutes))
    elif not zone_text:
        zone = UTC
    else:
        raise RecordError("created_date", f"unknown time zone {zone_text!r} in created_date {value!r}")
    return datetime(
        int(match["year"]),
        month,
        int(match["day"]),
        hour,
        int(match["minute"]),
        int(match["second"] or 0),
        tzinfo=zone,
    )


def _person(value) -> str | None:
    if not isinstance(value, dict):
        return None
    for key in ("name", "email"):
        if isinstance(value.get(key), str) and value[key].strip():
            return value[key].strip()
    return None


def chat_files(tree: ExportTree) -> list[tuple[str, str]]:
    found = []
    for name in tree.names:
        match = _MESSAGES.search(name)
        if match:
            found.append((name[: match.end("group")], name))
    return found


def message_from_record(record, report: ImportReport) -> Message | None:
    if not isinstance(record, dict):
        raise RecordError(None, f"a message must be an object, got {type(record).__name__}")
    if record.get("message_state") == "DELETED" or record.get("deletion_metadata"):
        report.skip("deleted")
        return None
    speaker = _person(record.get("creator"))
    if speaker is None:
        raise RecordError("creator", "the message names no creator")
    text = message_text(record, "text")
    if not text:
        report.skip("media omitted" if record.get("attached_files") or record.get("annotations") else "empty")
        return None
    return Message(
        role=PLACEHOLDER_ROLE, content=text, created_at=parse_created_date(record.get("created_date")), speaker=speaker
    )


def _owner(tree: ExportTree) -> str | None:
    for name in tree.names:
        if re.search(r"(?:^|/)Users/[^/]+/user_info\.json$", name):
            try:
                return _person(load_json(tree, name).get("user"))
            except (ValueError, AttributeError):
                return None
    return None


def read(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, gap_hours: float | None = None
) -> Iterator[Conversation]:
    gap = check_gap_hours(gap_hours)
    tick = message_ticker(progress, report)
    with ExportTree(path) as tree:
        chats = chat_files(tree)
        if not chats:
            report.reject(Rejection(str(path), "no Google Chat/Groups/<DM or Space>/messages.json in it"))
        for number, (folder, name) in enumerate(chats, start=1):
            label = tree.label(name)
            group = folder.rsplit("/", 1)[-1]
            title = group
            info_name = f"{folder}/group_info.json"
            if info_name in tree.names:
                try:
                    info = load_json(tree, info_name)
                    members = [_person(member) for member in info.get("members") or []]
                    title = info.get("name") or ", ".join(member for member in members if member) or group
                except (ValueError, AttributeError):
                    pass
            # Streamed: a space of years is one messages.json.
            with tree.open(name) as stream:
                walker = _Walker(stream)
                try:
                    for key in walker.object_keys():
                        if key != "messages":
                            walker.value()
                            continue
                        yield from chat_conversations(
                            _chat_messages(walker, label, report, tick, message_from_record),
                            source=NAME,
                            chat_key=group,
                            source_id=group,
                            title=title,
                            gap_hours=gap,
                            report=report,
                        )
                        if walker.failed is not None:
                            raise walker.failed
                except _Malformed as exc:
                    _report_break(walker, exc, label, report)
            if progress is not None:
                progress(
                    ImportProgress(number, len(chats), "chats", report.conversations_accepted, report.messages_accepted)
                )
        owner = _owner(tree)
        report.owner = owner if owner in report.participants else None
        report.owner_marked = report.owner is not None
