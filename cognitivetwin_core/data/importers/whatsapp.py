"""WhatsApp chat export: the `.txt` a phone writes ("Export chat"), or the `.zip` it shares
with the text inside (`_chat.txt` on iPhone, `WhatsApp Chat with X.txt` on Android). A zip
holding several chats' texts imports every one of them, each titled after its chat.

    Android: 12/31/23, 9:15 PM - Alice: text        (or 31/12/2023, 21:15 - Alice: text)
    iPhone:  [31/12/2023, 21:15:03] Alice: text      (or [12/31/23, 9:15:03 PM] Alice: text)

Lines that start no message continue the one before (multi-line messages). Whether dates
are day-first or month-first is decided from the whole file (a first pass over the dates),
never line by line. Left-to-right marks and no-break spaces some phones insert are removed.
System lines (the encryption notice, joins, changed numbers, new groups) are skipped;
media placeholders and deleted messages are skipped and counted in the report. The file is
read twice and streamed both times; the chat is cut into conversations at gaps in time.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.json_stream import file_size
from cognitivetwin_core.data.importers.messenger import (
    PLACEHOLDER_ROLE,
    chat_conversations,
    check_gap_hours,
)
from cognitivetwin_core.data.importers.report import ImportProgress, ImportReport, ProgressCallback, Rejection

NAME = "whatsapp"
TITLE = "WhatsApp chat export (.txt or .zip)"
FILE_FILTER = "WhatsApp chat (*.txt *.zip)"

_DATE = r"(?P<date>(?P<d1>\d{1,4})[./-](?P<d2>\d{1,2})[./-](?P<d3>\d{1,4}))"
_TIME = (
    r"(?P<time>(?P<hh>\d{1,2})[:.](?P<mm>\d{2})(?:[:.](?P<ss>\d{2}))?)"
    r"(?:[ \u202f\u00a0]?(?P<ampm>[AaPp]\.? ?[Mm]\.?))?"
)
_IOS = re.compile(rf"\[{_DATE},? {_TIME}\] (?P<rest>.*)", re.DOTALL)
_ANDROID = re.compile(rf"{_DATE},? {_TIME} [-\u2013] (?P<rest>.*)", re.DOTALL)
# Marks phones put around names, media lines and numbers; invisible, but they break matching.
_MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_SPACES = "\u202f\u00a0"

_MEDIA = re.compile(
    r"(<media omitted>|null|<attached: .*>|.*\b(image|video|audio|sticker|gif|document|contact card|"
    r"video note) omitted|.*\(file attached\)|view once (photo|video|voice message))",
    re.IGNORECASE | re.DOTALL,
)
_DELETED = re.compile(r"(this message was deleted|you deleted this message)\.?", re.IGNORECASE)
_EDITED = re.compile(r"\s*<this message was edited>\s*$", re.IGNORECASE)
_SYSTEM = re.compile(
    r"(end-to-end encrypted|security code|joined using this group's invite link|\bcreated (the )?group\b|"
    r"\bcreated this group\b|\badded\b|\bleft$|\bremoved\b|changed their phone number|changed (the|this) group|"
    r"changed the subject|changed to \+|\bnow an admin\b|no longer an admin|pinned a message|missed (voice|video) "
    r"call|disappearing messages|\bwas added\b|\bwere added\b|is a contact\b|business account)",
    re.IGNORECASE,
)
# A notice whose own text holds ": " (a new subject) would otherwise read as a message.
_SYSTEM_NAME = re.compile(r"changed (the subject|the group|this group)", re.IGNORECASE)
_MAX_NAME = 80
_COPY_MARK = re.compile(r" \(\d+\)$")


class _Header:
    __slots__ = ("date", "time", "ampm", "rest", "parts", "clock", "year_first")

    def __init__(self, match: re.Match):
        self.date = match["date"]
        self.time = match["time"]
        self.ampm = match["ampm"]
        self.rest = match["rest"]
        self.parts = (int(match["d1"]), int(match["d2"]), int(match["d3"]))
        self.clock = (int(match["hh"]), int(match["mm"]), int(match["ss"] or 0))
        self.year_first = len(match["d1"]) == 4


def _clean(line: str) -> str:
    if line.isascii():
        return line
    # str.replace per character is several times faster than str.translate with a table.
    for mark in _MARKS:
        if mark in line:
            line = line.replace(mark, "")
    for space in _SPACES:
        if space in line:
            line = line.replace(space, " ")
    return line


def _header(line: str) -> _Header | None:
    text = _clean(line)
    match = _IOS.match(text) or _ANDROID.match(text)
    return _Header(match) if match else None


class _DateOrder:
    """Day-first, month-first or year-first, from every date of the file."""

    def __init__(self):
        self.first_over_12 = False
        self.second_over_12 = False
        self.year_first = False
        self.twelve_hour = False
        self.seen = 0

    def add(self, header: _Header) -> None:
        first, second, _ = header.parts
        self.seen += 1
        if header.year_first:
            self.year_first = True
        elif first > 12:
            self.first_over_12 = True
        elif second > 12:
            self.second_over_12 = True
        if header.ampm:
            self.twelve_hour = True

    def decide(self, label: str, report: ImportReport) -> str:
        if self.year_first:
            return "ymd"
        if self.first_over_12 and self.second_over_12:
            report.warnings.append(
                f"{label}: some dates are day-first and some month-first; read as day-first, so check the times"
            )
            return "dmy"
        if self.first_over_12:
            return "dmy"
        if self.second_over_12:
            return "mdy"
        # No day past the 12th anywhere: the clock tells the phone's region best.
        order = "mdy" if self.twelve_hour else "dmy"
        if self.seen:
            report.warnings.append(
                f"{label}: no date shows whether the day or the month comes first; read as "
                + ("month-first (12-hour clock)" if order == "mdy" else "day-first (24-hour clock)")
            )
        return order


def _timestamp(header: _Header, order: str) -> datetime:
    a, b, c = header.parts
    year, month, day = (a, b, c) if order == "ymd" else (c, b, a) if order == "dmy" else (c, a, b)
    if year < 100:
        year += 2000
    hour, minute, second = header.clock
    if header.ampm:
        pm = header.ampm.lower().startswith("p")
        if hour == 12:
            hour = 0
        if pm:
            hour += 12
    return datetime(year, month, day, hour, minute, second)


def _text_lines(open_text) -> Iterator[tuple[int, str]]:
    with open_text() as stream:
        for number, line in enumerate(stream, start=1):
            yield number, line.rstrip("\r\n")


class _Tick:
    def __init__(self, callback: ProgressCallback | None, total: int | None, report: ImportReport):
        self.callback, self.total, self.report, self.lines = callback, total, report, 0

    def __call__(self, done_bytes: int) -> None:
        self.lines += 1
        if self.callback is not None and self.lines % 20000 == 0:
            self.callback(
                ImportProgress(
                    done_bytes, self.total, "bytes", self.report.conversations_accepted, self.report.messages_accepted
                )
            )


def _messages(open_text, label: str, report: ImportReport, progress, total) -> Iterator[Message]:
    order = _DateOrder()
    for _, line in _text_lines(open_text):
        header = _header(line)
        if header is not None:
            order.add(header)
    if order.seen == 0:
        report.reject(
            Rejection(
                label,
                "no line starts like a WhatsApp message ('12/31/23, 9:15 PM - Name: text' or "
                "'[31/12/2023, 21:15:03] Name: text'): choose the chat's exported .txt or .zip",
                line=1,
            )
        )
        return
    date_order = order.decide(label, report)
    tick = _Tick(progress, total, report)
    done = 0
    pending: tuple[int, str, datetime, list[str], bool] | None = None  # line, name, time, text lines, ios mark

    def finish(item) -> Message | None:
        line_number, name, stamp, lines, marked = item
        text = _EDITED.sub("", "\n".join(lines)).strip()
        plain = text.strip()
        if _DELETED.fullmatch(plain):
            report.skip("deleted")
            return None
        if _MEDIA.fullmatch(plain):
            report.skip("media omitted")
            return None
        if marked and _SYSTEM.search(plain):
            report.skip("system")  # iPhone writes system notices as the chat's own messages
            return None
        if not plain:
            report.skip("empty")
            return None
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            report.reject(Rejection(label, "not UTF-8 text", line=line_number))
            return None
        return Message(role=PLACEHOLDER_ROLE, content=text, created_at=stamp, speaker=name)

    for number, line in _text_lines(open_text):
        done += len(line) + 1
        tick(done)
        header = _header(line)
        if header is None:
            if pending is not None:
                pending[3].append(_clean(line))
            continue
        if pending is not None:
            message = finish(pending)
            pending = None
            if message is not None:
                yield message
        try:
            stamp = _timestamp(header, date_order)
        except ValueError:
            report.reject(
                Rejection(label, f"the date {header.date} {header.time} is not a real date and time", line=number)
            )
            continue
        rest = header.rest
        name, colon, text = rest.partition(": ")
        if not colon and rest.endswith(":"):
            name, colon, text = rest[:-1], ":", ""
        if not colon or len(name) > _MAX_NAME or _SYSTEM_NAME.search(name):
            report.skip("system")
            continue
        # iPhone marks media and notices with a left-to-right mark right after the colon.
        marked = line.partition(": ")[2].startswith("\u200e")
        pending = (number, name.strip(), stamp, [text], marked)
    if pending is not None:
        message = finish(pending)
        if message is not None:
            yield message


def _chat_members(archive: zipfile.ZipFile) -> list[str]:
    """The chat texts of a zip: every `_chat.txt` or `WhatsApp Chat ….txt` (a zip of several
    exports holds one per chat), else its only text file."""
    texts = [
        info.filename
        for info in archive.infolist()
        if not info.is_dir() and info.filename.lower().endswith(".txt") and "/__macosx/" not in f"/{info.filename}"
    ]
    chats = [
        name
        for name in texts
        if name.rsplit("/", 1)[-1] == "_chat.txt" or name.rsplit("/", 1)[-1].startswith("WhatsApp Chat")
    ]
    return chats or (texts if len(texts) == 1 else [])


def is_whatsapp_text(head: bytes) -> bool:
    """Whether the first bytes of a text file look like a WhatsApp export."""
    text = head.decode("utf-8", "replace")
    return any(_header(line) is not None for line in text.splitlines()[:20])


def zip_has_chat(archive: zipfile.ZipFile) -> bool:
    names = _chat_members(archive)
    if not names:
        return False
    with archive.open(names[0]) as stream:
        return is_whatsapp_text(stream.read(1 << 14))


def read(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, gap_hours: float | None = None
) -> Iterator[Conversation]:
    gap = check_gap_hours(gap_hours)
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = _chat_members(archive)
            if not members:
                report.reject(
                    Rejection(
                        str(path), "the zip holds no WhatsApp chat text (_chat.txt or 'WhatsApp Chat with ….txt')"
                    )
                )
                return
            owners = set()
            for member in members:
                before = dict(report.participants)
                yield from _zip_chat(archive, member, path, report, progress, gap)
                title = _member_title(member, path)
                report.chats.append(title)
                names = [name for name, count in report.participants.items() if count != before.get(name, 0)]
                owners.add(_owner(title, names))
            # Several chats: the exporter is the one person every two-person chat names as the other.
            report.owner = owners.pop() if len(owners) == 1 else None
        return
    label = str(path)
    with open(path, "rb") as probe:
        total = file_size(probe)

    def open_file():
        return open(path, encoding="utf-8-sig", errors="surrogateescape")

    messages = _messages(open_file, label, report, progress, total)
    yield from chat_conversations(
        messages, source=NAME, chat_key=path.name, title=_title(path.stem), gap_hours=gap, report=report
    )
    report.owner = _owner(_title(path.stem), list(report.participants))


def _member_title(member: str, path: Path) -> str:
    """The chat's name: from its text's name, or the zip's for an iPhone `_chat.txt`."""
    stem = Path(member).stem if member.rsplit("/", 1)[-1] != "_chat.txt" else path.stem
    return _title(stem)


def _zip_chat(
    archive: zipfile.ZipFile, member: str, path: Path, report: ImportReport, progress, gap: float
) -> Iterator[Conversation]:
    """One chat text of a zip, its conversations titled after the chat."""
    total = archive.getinfo(member).file_size

    def open_text():
        return io.TextIOWrapper(archive.open(member), encoding="utf-8-sig", errors="surrogateescape")

    messages = _messages(open_text, f"{path}!{member}", report, progress, total)
    yield from chat_conversations(
        messages,
        source=NAME,
        chat_key=f"{path.name}/{member}",
        title=_member_title(member, path),
        gap_hours=gap,
        report=report,
    )


def _owner(title: str, names: list[str]) -> str | None:
    """A two-person chat is named after the other person: the exporter is the one left."""
    if len(names) == 2 and title in names:
        return names[1 - names.index(title)]
    return None


def _title(stem: str) -> str:
    """The chat's name from an export's file name; a copy's " (1)" (a second download) is no part
    of it, as the name is the chat's identity (docs/data-and-model.md)."""
    for prefix in ("WhatsApp Chat with ", "WhatsApp Chat - ", "WhatsApp Chat "):
        if stem.startswith(prefix):
            return _COPY_MARK.sub("", stem[len(prefix) :])
    return stem
