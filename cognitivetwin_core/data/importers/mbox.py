"""E-mail in mbox format: a Gmail Takeout (`All mail Including Spam and Trash.mbox`), a
Thunderbird folder file (`Inbox`, `Sent`), or any `.mbox` (also inside a folder or zip).

Each thread (messages joined by `References` and `In-Reply-To`) becomes one conversation,
oldest mail first. Only the new words of each mail are kept (`new_text`): quoted lines
("> …"), the attribution before them ("On Mon, 4 Mar 2024 at 10:00, Ana <ana@…> wrote:", also
when the mail program wrapped it over two lines), forwarded or "-----Original Message-----"
blocks and the signature after the "-- " line are removed. The body is the text/plain part
(multipart/alternative: plain preferred, HTML converted to text otherwise), decoded from
quoted-printable or base64 with its declared charset (`email.policy.default` does this).

The speaker is the sender's display name (the first one seen for that address), else the
address. The owner: the sender of the mails Gmail labels "Sent"; where every mail has one
sender (a sent-mail folder) that sender, and the export then holds only the owner's own
messages (style, no reply pairs). The file is read twice (threads first, then one mail at a
time); only message ids and file offsets stay in memory.
"""

from __future__ import annotations

import mailbox
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.export_tree import ExportTree
from cognitivetwin_core.data.importers.messenger import PLACEHOLDER_ROLE, chat_conversations
from cognitivetwin_core.data.importers.report import ImportProgress, ImportReport, ProgressCallback, Rejection

NAME = "mbox"
TITLE = "E-mail (mbox: Gmail Takeout, Thunderbird)"
FILE_FILTER = "Mailbox (*.mbox *.mbx)"

_ATTRIBUTION_END = re.compile(r"wrote:\s*$|schrieb:\s*$|a écrit\s*:\s*$|escribió:\s*$", re.IGNORECASE)
_ATTRIBUTION_START = re.compile(r"^(On |Le |Am |El |Op )", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^(-{2,}\s*Original Message\s*-{2,}|-{2,}\s*Forwarded message\s*-{2,}|_{10,}|Begin forwarded message:)",
    re.IGNORECASE,
)
_OUTLOOK_HEADER = re.compile(r"^From: .+$", re.IGNORECASE)
# Threads never split by time: a reply a week later is still the same thread.
_NO_GAP_HOURS = 1e9


def looks_like_mbox(head: bytes) -> bool:
    return (
        head.startswith(b"From ")
        and b"\n" in head
        and re.search(rb"\n(From|Date|Subject|Message-ID): ", head, re.I) is not None
    )


class _TextOfHtml(HTMLParser):
    _BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.quote = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script", "head"):
            self.skip += 1
        if tag == "blockquote" or (tag == "div" and ("class", "gmail_quote") in attrs):
            self.quote += 1
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("style", "script", "head"):
            self.skip = max(0, self.skip - 1)
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip and not self.quote:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML mail, without quoted blocks (<blockquote>, gmail_quote)."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def body_text(message: EmailMessage) -> str:
    """The mail's text: text/plain preferred, else HTML converted; charsets and transfer
    encodings decoded."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or wrong charset: keep what decodes
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    if not isinstance(content, str):
        return ""
    return html_to_text(content) if part.get_content_type() == "text/html" else content


def new_text(text: str) -> str:
    """Only what the sender wrote in this mail: no quotes, attribution, forwarded block or signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if line.rstrip("\n") in ("-- ", "--") or _ORIGINAL.match(stripped):
            break
        if _OUTLOOK_HEADER.match(stripped) and any(
            re.match(r"^(Sent|Date|To|Subject): ", following.strip(), re.I)
            for following in lines[index + 1 : index + 4]
        ):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line)
    # The attribution line(s) just above the quote: "On … wrote:", possibly wrapped in two.
    while kept and not kept[-1].strip():
        kept.pop()
    if kept and _ATTRIBUTION_END.search(kept[-1]):
        last = kept.pop()
        if not _ATTRIBUTION_START.match(last.strip()) and kept and _ATTRIBUTION_START.match(kept[-1].strip()):
            kept.pop()
    while kept and not kept[-1].strip():
        kept.pop()
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join(line.rstrip() for line in kept)


def _ids(value) -> list[str]:
    return re.findall(r"<[^<>\s]+>", str(value or ""))


def _date(value) -> datetime | None:
    if not value:
        return None
    try:
        stamp = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _mbox_files(path: Path, temporary: list[Path]) -> list[tuple[Path, str]]:
    """(mbox file on disk, label): the file itself, or each .mbox of a folder or zip (a zip
    member is copied to a temporary file, since mailbox needs to seek)."""
    if path.is_file() and path.suffix.lower() != ".zip":
        return [(path, str(path))]
    found = []
    with ExportTree(path) as tree:
        for name in tree.names:
            if not name.lower().endswith((".mbox", ".mbx")):
                continue
            if path.is_dir():
                found.append((path / name, tree.label(name)))
            else:
                folder = Path(tempfile.mkdtemp(prefix="mbox-"))
                temporary.append(folder)
                target = folder / "mail.mbox"
                with tree.open(name) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
                found.append((target, tree.label(name)))
    return found


def read(path: Path, report: ImportReport, progress: ProgressCallback | None = None) -> Iterator[Conversation]:
    temporary: list[Path] = []
    try:
        files = _mbox_files(Path(path), temporary)
        if not files:
            report.reject(Rejection(str(path), "no .mbox file in it"))
        for file_path, label in files:
            yield from _read_mbox(file_path, label, report, progress)
    finally:
        for folder in temporary:
            shutil.rmtree(folder, ignore_errors=True)


def _read_mbox(path: Path, label: str, report: ImportReport, progress) -> Iterator[Conversation]:
    parser = BytesParser(policy=policy.default)
    box = mailbox.mbox(str(path), factory=None, create=False)
    # Pass 1: headers only. Threads by union of ids; names per address; who sent "Sent" mail.
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.get(key, key) != key:
            parent[key] = parent.get(parent[key], parent[key])
            key = parent[key]
        return key

    keys: list[tuple[str, str, datetime | None]] = []  # (mailbox key, message id, date)
    names: dict[str, str] = {}
    senders: dict[str, int] = {}
    sent_by: dict[str, int] = {}
    for number, key in enumerate(box.iterkeys()):
        with box.get_file(key) as stream:
            headers = parser.parse(stream, headersonly=True)
        own_id = (_ids(headers.get("Message-ID")) or [f"<{label}#{number}>"])[0]
        related = _ids(headers.get("References")) + _ids(headers.get("In-Reply-To"))
        parent.setdefault(own_id, own_id)
        for other in related:
            parent.setdefault(other, other)
            a, b = root(own_id), root(other)
            if a != b:
                parent[a] = b
        addresses = getaddresses([str(headers.get("From") or "")])
        if addresses:
            name, address = addresses[0]
            address = address.lower()
            senders[address] = senders.get(address, 0) + 1
            if name and address not in names:
                names[address] = name.strip()
            if "sent" in [label.strip().lower() for label in str(headers.get("X-Gmail-Labels") or "").split(",")]:
                sent_by[address] = sent_by.get(address, 0) + 1
        keys.append((key, own_id, _date(headers.get("Date"))))
    threads: dict[str, list[tuple[datetime | None, str]]] = {}
    for key, own_id, date in keys:
        threads.setdefault(root(own_id), []).append((date, key))
    del keys

    def sort_key(item):
        return (item[0] or datetime.max.replace(tzinfo=UTC)).timestamp() if item[0] else float("inf")

    owner_address = max(sent_by, key=sent_by.get) if sent_by else (next(iter(senders)) if len(senders) == 1 else None)
    ordered = sorted(threads.items(), key=lambda item: min(sort_key(entry) for entry in item[1]))
    # Pass 2: one mail at a time, thread by thread.
    for done, (thread, entries) in enumerate(ordered, start=1):
        entries.sort(key=sort_key)
        messages: list[Message] = []
        subject = None
        for date, key in entries:
            with box.get_file(key) as stream:
                mail = parser.parse(stream)
            addresses = getaddresses([str(mail.get("From") or "")])
            if not addresses or not addresses[0][1]:
                report.reject(Rejection(label, "the mail has no sender address", record=int(key), field="From"))
                continue
            address = addresses[0][1].lower()
            subject = subject or (str(mail.get("Subject") or "").strip() or None)
            text = new_text(body_text(mail))
            if not text.strip():
                report.skip("empty")
                continue
            messages.append(
                Message(role=PLACEHOLDER_ROLE, content=text, created_at=date, speaker=names.get(address, address))
            )
        if messages:
            yield from chat_conversations(
                messages,
                source=NAME,
                chat_key=thread,
                source_id=thread,
                title=subject,
                gap_hours=_NO_GAP_HOURS,
                report=report,
            )
        if progress is not None and done % 100 == 0:
            progress(
                ImportProgress(done, len(ordered), "threads", report.conversations_accepted, report.messages_accepted)
            )
    box.close()
    if owner_address is not None:
        owner = names.get(owner_address, owner_address)
        if owner in report.participants:
            report.owner, report.owner_marked = owner, True
            report.owner_only = len(senders) == 1
