"""Telegram Desktop export (`result.json`, "Export chat history" in JSON): one chat
(`{"name", "type", "id", "messages": [...]}`) or the full account export, whose chats are
in `chats.list`. Each message's `text` is a string or a list of plain strings and entity
objects (`{"type": "link", "text": ...}`); the participant is `from` (or `from_id` for
deleted accounts). Service messages (joins, calls, pins) are skipped; media without a
caption and forwarded messages (not the sender's own words) are skipped and counted.

The file is streamed: the walker decodes one message at a time from a sliding window
(json_stream's), so a chat of years is never in memory; every chat is cut into
conversations at gaps in time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.json_stream import _TOO_DEEP, _incomplete, _skip_value, _TextWindow, file_size
from cognitivetwin_core.data.importers.messenger import PLACEHOLDER_ROLE, chat_conversations, check_gap_hours
from cognitivetwin_core.data.importers.records import RecordError, parse_time
from cognitivetwin_core.data.importers.report import ImportProgress, ImportReport, ProgressCallback, Rejection

NAME = "telegram"
TITLE = "Telegram Desktop export (result.json)"
FILE_FILTER = "Telegram export (result.json *.json)"

_MEDIA_KEYS = ("photo", "file", "media_type", "sticker_emoji", "poll", "location_information", "contact_information")
_decoder = json.JSONDecoder()


class _Malformed(Exception):
    def __init__(self, reason: str, position: int):
        super().__init__(reason)
        self.reason = reason
        self.position = position


class _TooDeep(_Malformed):
    """A value nested too deeply to decode; the walker has moved past it."""


class _Walker:
    """Just enough of a pull parser to reach each chat's `messages` list in a big export."""

    def __init__(self, stream):
        self.window = _TextWindow(stream)
        # Set when a chat's messages break off: the messages before are kept, then it is raised.
        self.failed: _Malformed | None = None

    def peek(self) -> str | None:
        return self.window.skip_whitespace()

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise _Malformed(
                f"expected {char!r}, found {found!r}" if found else f"the file ends before {char!r}", self.window.pos
            )
        self.window.pos += 1

    def value(self):
        window = self.window
        while True:
            if self.peek() is None:
                raise _Malformed("the file ends early (truncated file)", window.pos)
            try:
                value, end = _decoder.raw_decode(window.text, window.pos)
            except RecursionError:
                start = window.pos
                if not _skip_value(window):
                    raise _Malformed("the file ends early (truncated file)", start) from None
                raise _TooDeep(_TOO_DEEP, start) from None
            except json.JSONDecodeError as exc:
                if _incomplete(exc, window.text) and window.more(len(window.text)):
                    continue
                raise _Malformed(
                    "the file ends early (truncated file)" if _incomplete(exc, window.text) else f"bad JSON: {exc.msg}",
                    exc.pos,
                ) from None
            window.pos = end
            return value

    def object_keys(self) -> Iterator[str]:
        """The keys of the object at the cursor; the caller reads or skips each value."""
        self.expect("{")
        if self.peek() == "}":
            self.window.pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise _Malformed("bad JSON: an object key must be text", self.window.pos)
            self.expect(":")
            yield key
            char = self.peek()
            if char == ",":
                self.window.pos += 1
            elif char == "}":
                self.window.pos += 1
                return
            else:
                raise _Malformed(f"bad JSON: expected ',' or '}}', found {char!r}", self.window.pos)

    def items(self) -> Iterator[tuple[int, int]]:
        """(index, line) before each element of the list at the cursor; the caller reads it."""
        self.expect("[")
        if self.peek() == "]":
            self.window.pos += 1
            return
        index = 0
        while True:
            self.peek()
            line, _ = self.window.line_of(self.window.pos)
            yield index, line
            index += 1
            char = self.peek()
            if char == ",":
                self.window.pos += 1
            elif char == "]":
                self.window.pos += 1
                return
            else:
                raise _Malformed(f"bad JSON: expected ',' or ']', found {char!r}", self.window.pos)


def message_text(value, field: str = "text") -> str:
    """A message's text: a string, or a list of strings and entity objects with `text`."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for index, part in enumerate(value):
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise RecordError(f"{field}[{index}]", "a text part must be a string or an object with 'text'")
        return "".join(parts)
    raise RecordError(field, f"text must be a string or a list of parts, got {type(value).__name__}")


def _timestamp(record: dict) -> datetime | None:
    unix = record.get("date_unixtime")
    if unix is not None:
        try:
            return datetime.fromtimestamp(int(unix), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise RecordError("date_unixtime", f"date_unixtime {unix!r} is not a number of seconds") from None
    return parse_time(record.get("date"), "date")


def message_from_record(record, report: ImportReport) -> Message | None:
    """The Message of one Telegram record, or None when it is skipped (and counted)."""
    if not isinstance(record, dict):
        raise RecordError(None, f"a message must be a JSON object, got {type(record).__name__}")
    kind = record.get("type", "message")
    if kind == "service":
        report.skip("system")
        return None
    if kind != "message":
        report.skip("system")
        return None
    text = message_text(record.get("text"))
    if record.get("forwarded_from") is not None:
        report.skip("forwarded")
        return None
    if not text.strip():
        report.skip("media omitted" if any(key in record for key in _MEDIA_KEYS) else "empty")
        return None
    speaker = record.get("from")
    if not isinstance(speaker, str) or not speaker.strip():
        speaker = record.get("from_id")
    if not isinstance(speaker, str) or not speaker.strip():
        raise RecordError("from", "the message names no sender (no 'from' or 'from_id')")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError("text", "not UTF-8 text") from None
    return Message(role=PLACEHOLDER_ROLE, content=text, created_at=_timestamp(record), speaker=speaker.strip())


def _chat_messages(walker: _Walker, label: str, report: ImportReport, tick, parse=None) -> Iterator[Message]:
    """The messages of the list at the cursor, each record made a Message by `parse` (Telegram's
    by default); a list that breaks off keeps what came before and sets `walker.failed`."""
    parse = parse or message_from_record
    try:
        for index, line in walker.items():
            try:
                record = walker.value()
            except _TooDeep as exc:  # one message skipped, as the line-based readers skip one line
                report.reject(Rejection(label, exc.reason, line=line, record=index))
                continue
            tick()
            try:
                message = parse(record, report)
            except RecordError as exc:
                report.reject(Rejection(label, exc.reason, line=line, record=index, field=exc.field))
                continue
            if message is not None:
                yield message
    except _Malformed as exc:
        walker.failed = exc


def _chat(walker: _Walker, label: str, report: ImportReport, gap: float, tick) -> Iterator[Conversation]:
    """One chat object at the cursor: its name and id, then its messages streamed."""
    name = chat_id = None
    for key in walker.object_keys():
        if key == "messages":
            title = name if isinstance(name, str) else None
            key_text = f"{chat_id if chat_id is not None else title or label}"
            yield from chat_conversations(
                _chat_messages(walker, label, report, tick),
                source=NAME,
                chat_key=key_text,
                title=title,
                gap_hours=gap,
                report=report,
            )
            if walker.failed is not None:
                raise walker.failed
        elif key == "name":
            name = walker.value()
        elif key == "id":
            chat_id = walker.value()
        else:
            walker.value()


def _report_break(walker: _Walker, exc: _Malformed, label: str, report: ImportReport) -> None:
    """Where the file stopped being JSON (or ended early), as a rejection; nothing after it is read."""
    line, column = walker.window.line_of(min(exc.position, len(walker.window.text)))
    if "truncated" in exc.reason:
        report.truncated_at = f"line {line}, column {column}"
    report.reject(Rejection(label, f"{exc.reason}; the rest of the file was not read", line=line, column=column))


def _owner(info) -> str | None:
    """The exporting account's name as its messages are signed ("First Last")."""
    if not isinstance(info, dict):
        return None
    parts = [info.get(key) for key in ("first_name", "last_name")]
    name = " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
    return name or None


def _top(walker: _Walker, label: str, report: ImportReport, gap: float, tick) -> Iterator[Conversation]:
    found = False
    name = chat_id = None
    for key in walker.object_keys():
        if key == "chats":
            for inner in walker.object_keys():
                if inner == "list":
                    for _index, _line in walker.items():
                        found = True
                        yield from _chat(walker, label, report, gap, tick)
                else:
                    walker.value()
        elif key == "messages":
            found = True
            title = name if isinstance(name, str) else None
            yield from chat_conversations(
                _chat_messages(walker, label, report, tick),
                source=NAME,
                chat_key=str(chat_id if chat_id is not None else title or label),
                title=title,
                gap_hours=gap,
                report=report,
            )
            if walker.failed is not None:
                raise walker.failed
        elif key == "name":
            name = walker.value()
        elif key == "id":
            chat_id = walker.value()
        elif key == "personal_information":
            report.owner = _owner(walker.value())
        else:
            walker.value()
    if report.owner is not None and report.owner not in report.participants:
        report.owner = None  # the account's name differs from how its messages are signed
    report.owner_marked = report.owner is not None
    if not found:
        report.reject(
            Rejection(
                label,
                "no chat in this file (neither 'messages' nor 'chats.list'): choose the result.json of "
                "Telegram Desktop's JSON export",
                line=1,
            )
        )


def read(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, gap_hours: float | None = None
) -> Iterator[Conversation]:
    gap = check_gap_hours(gap_hours)
    label = str(path)
    with open(path, "rb") as stream:
        total = file_size(stream)
        walker = _Walker(stream)
        count = 0

        def tick() -> None:
            nonlocal count
            count += 1
            if progress is not None and count % 5000 == 0:
                progress(
                    ImportProgress(
                        walker.window.bytes_read,
                        total,
                        "bytes",
                        report.conversations_accepted,
                        report.messages_accepted,
                    )
                )

        try:
            yield from _top(walker, label, report, gap, tick)
        except _Malformed as exc:
            _report_break(walker, exc, label, report)


def looks_like_telegram(head: bytes) -> bool:
    return (b'"messages"' in head or b'"chats"' in head) and (
        b'"date_unixtime"' in head
        or b'"from_id"' in head
        or b'"personal_information"' in head
        or b'"personal_chat"' in head
        or b'"private_group"' in head
        or b'"text_entities"' in head
    )
