"""Facebook Messenger and Instagram, from Meta's "Download your information" (JSON format).

Each chat is a folder `messages/inbox/<name>_<id>/` (also `archived_threads`,
`filtered_threads`, `message_requests`, `e2ee_cutover`; newer downloads put `messages/` under
`your_facebook_activity/`, `your_activity_across_facebook/` or `your_instagram_activity/`) with
`message_1.json`, `message_2.json`, …: message_1 holds the newest messages and each file lists
them newest first. A file is `{"participants": [{"name"}], "messages": [{"sender_name",
"timestamp_ms", "content", "photos"?, "reactions"?, "is_unsent"?, "type"?…}], "title",
"thread_path"}`. The chat is read oldest first: files from the highest number down, each
reversed, one file in memory at a time; then cut into conversations at gaps.

Meta writes every non-ASCII character as its UTF-8 bytes escaped one by one (`"caf\\u00c3\\u00a9"`
for "café"): `repair_text` undoes that exactly, and leaves text that was right alone (see
docs/importers.md). Photos, videos, stickers, calls, unsent messages, "Liked a message"
reactions and the system lines that arrive as ordinary messages ("… named the group", "… sent
an attachment.") are skipped and counted. The owner comes from the profile file of the
download, else from the one participant of every chat.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
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
from cognitivetwin_core.data.importers.report import ImportReport, ProgressCallback, Rejection

NAME = "facebook-messenger"
TITLE = "Facebook Messenger download (folder or .zip)"
FILE_FILTER = "Facebook download (*.zip *.json)"
INSTAGRAM_NAME = "instagram"
INSTAGRAM_TITLE = "Instagram download (folder or .zip)"
INSTAGRAM_FILE_FILTER = "Instagram download (*.zip *.json)"

CHAT_FILE = re.compile(
    r"(?:^|/)messages/(?:inbox|archived_threads|filtered_threads|message_requests|e2ee_cutover)/"
    r"(?P<chat>[^/]+)/message_(?P<number>\d+)\.json$"
)
_LOOSE_CHAT_FILE = re.compile(r"(?:^|/)message_(?P<number>\d+)\.json$")
_MEDIA_KEYS = ("photos", "videos", "audio_files", "gifs", "files", "sticker")
_SYSTEM = re.compile(
    r"^(?:.+ (?:named the group|changed the group (?:photo|name)|set (?:the|your|his|her|their) nickname|"
    r"set the nickname for|changed the (?:chat )?theme|set the emoji to|changed the emoji|pinned a message|"
    r"left the group|added .+ to the group|removed .+ from the group|created the group|joined the video chat|"
    r"started sharing video|started a (?:video|audio) chat|turned on disappearing messages).*"
    r"|You are now connected on Messenger|Say hi to your new Facebook friend.*|The (?:video )?(?:chat|call) ended\.?"
    r"|Messages and calls are secured with end-to-end encryption.*)\.?$",
    re.IGNORECASE | re.DOTALL,
)
_ATTACHMENT = re.compile(
    r"^.+ sent (?:an attachment|a (?:photo|video|voice message|sticker|GIF|link|location))\.$", re.IGNORECASE
)
_REACTION = re.compile(
    r"^(?:Liked a message|Reacted .{1,12} to (?:your|a) message|.+ reacted .{1,12} to your message)$"
)
_CALL = re.compile(r"^.+ (?:missed your call|called you|missed a (?:video )?call from .+|started a call)\.?$")
_UNSENT = re.compile(r"^(?:This message was unsent\.?|.+ unsent a message\.?)$")


def repair_text(text: str) -> str:
    """Meta's mojibake undone: every character of the field is one UTF-8 byte (U+0000–U+00FF),
    so encoding it as latin-1 gives back the UTF-8 bytes. Text that is already right (a
    character above U+00FF, or bytes that are no UTF-8) goes to ftfy, which changes only what
    it recognises as mis-decoded."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        import ftfy

        return ftfy.fix_encoding(text)


def chat_files(tree: ExportTree) -> dict[str, list[tuple[int, str]]]:
    """Each chat folder's message_N.json files, newest file (message_1) first. A chat folder (or
    `messages/inbox`) chosen on its own lacks the `messages/inbox/` above it: its files count
    when they have a chat's shape."""
    chats: dict[str, list[tuple[int, str]]] = {}
    for name in tree.names:
        match = CHAT_FILE.search(name)
        if match:
            folder = name[: match.start("chat")] + match["chat"]
            chats.setdefault(folder, []).append((int(match["number"]), name))
    if not chats:
        for name in tree.names:
            match = _LOOSE_CHAT_FILE.search(name)
            if match and _looks_like_chat_part(tree, name):
                folder = name.rpartition("/")[0] or tree.path.name
                chats.setdefault(folder, []).append((int(match["number"]), name))
    for files in chats.values():
        files.sort()
    return chats


def _looks_like_chat_part(tree: ExportTree, name: str) -> bool:
    with tree.open(name) as stream:
        head = stream.read(1 << 14)
    return b'"participants"' in head or (b'"sender_name"' in head and b'"timestamp_ms"' in head)


def is_instagram(tree: ExportTree) -> bool:
    hints = ("your_instagram_activity/", "personal_information/personal_information", "instagram")
    return "instagram" in tree.path.name.lower() or any(
        hint in name.lower() for name in tree.names[:5000] for hint in hints
    )


def _profile_owner(tree: ExportTree) -> str | None:
    for name in tree.names:
        lowered = name.lower()
        try:
            if lowered.endswith("profile_information/profile_information.json"):
                profile = load_json(tree, name)
                block = profile.get("profile_v2") or profile.get("profile") or {}
                full = (block.get("name") or {}).get("full_name")
                if isinstance(full, str) and full.strip():
                    return repair_text(full.strip())
            if lowered.endswith("personal_information/personal_information.json"):
                users = load_json(tree, name).get("profile_user") or []
                fields = users[0].get("string_map_data", {}) if users else {}
                value = (fields.get("Name") or fields.get("Username") or {}).get("value")
                if isinstance(value, str) and value.strip():
                    return repair_text(value.strip())
        except (ValueError, AttributeError, IndexError, TypeError, OSError):
            continue
    return None


def message_from_record(record, report: ImportReport) -> Message | None:
    """The Message of one DYI record, or None when it is skipped (and counted)."""
    if not isinstance(record, dict):
        raise RecordError(None, f"a message must be an object, got {type(record).__name__}")
    sender = record.get("sender_name")
    if not isinstance(sender, str) or not sender.strip():
        raise RecordError("sender_name", "the message names no sender")
    stamp = record.get("timestamp_ms")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
        raise RecordError("timestamp_ms", "timestamp_ms must be milliseconds since 1970")
    if record.get("is_unsent") or record.get("is_unsent_image_by_messenger_kid_parent"):
        report.skip("unsent")
        return None
    kind = record.get("type")
    if kind == "Call" or "call_duration" in record:
        report.skip("calls")
        return None
    if kind in ("Subscribe", "Unsubscribe"):
        report.skip("system")
        return None
    text = repair_text(message_text(record, "content")).strip()
    if not text:
        report.skip("media omitted" if any(key in record for key in _MEDIA_KEYS) else "empty")
        return None
    if _UNSENT.match(text):
        report.skip("unsent")
    elif _REACTION.match(text):
        report.skip("reactions")
    elif _CALL.match(text):
        report.skip("calls")
    elif _ATTACHMENT.match(text):
        report.skip("media omitted")
    elif _SYSTEM.match(text):
        report.skip("system")
    else:
        created = datetime.fromtimestamp(stamp / 1000.0, tz=UTC)
        return Message(role=PLACEHOLDER_ROLE, content=text, created_at=created, speaker=repair_text(sender.strip()))
    return None


def _stamp(record) -> float:
    stamp = record.get("timestamp_ms") if isinstance(record, dict) else None
    return float(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else 0.0


def _chat_part(tree: ExportTree, name: str, report: ImportReport) -> dict | None:
    label = tree.label(name)
    try:
        data = load_json(tree, name)
    except ValueError as exc:
        report.reject(Rejection(label, f"bad JSON ({exc}); this part of the chat was skipped"))
        return None
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        report.reject(Rejection(label, "no 'messages' list: not a Messenger/Instagram chat file", field="messages"))
        return None
    return data


def _chat_messages(tree: ExportTree, files: list[tuple[int, str]], first: dict | None, report, meta: dict, tick):
    """The chat oldest first: message_N (`first`, already read) down to message_1, each reversed."""
    for position, (_number, name) in enumerate(reversed(files)):
        label = tree.label(name)
        data = first if position == 0 else _chat_part(tree, name, report)
        if data is None:
            continue
        for person in data.get("participants") or []:
            if isinstance(person, dict) and isinstance(person.get("name"), str):
                meta["participants"].add(repair_text(person["name"]))
        records = data["messages"]
        # Newest first in Meta's files; ordered by time (then reversed file order) so a file
        # written another way reads right too.
        order = sorted(range(len(records) - 1, -1, -1), key=lambda index: _stamp(records[index]))
        for index in order:
            tick()
            try:
                message = message_from_record(records[index], report)
            except RecordError as exc:
                report.reject(Rejection(label, exc.reason, record=index, field=f"messages[{index}].{exc.field or ''}"))
                continue
            if message is not None:
                yield message


def _read(
    path: Path, report: ImportReport, progress: ProgressCallback | None, gap_hours: float | None, source: str
) -> Iterator[Conversation]:
    gap = check_gap_hours(gap_hours)
    with ExportTree(path) as tree:
        chats = chat_files(tree)
        if not chats:
            report.reject(
                Rejection(
                    str(path),
                    "no messages/inbox/<chat>/message_1.json in it: choose the folder or .zip of Meta's "
                    "download in JSON format (not HTML)",
                )
            )
            return
        tick = message_ticker(progress, report)
        everyone: list[set[str]] = []
        for folder, files in sorted(chats.items()):
            meta: dict = {"participants": set()}
            first = _chat_part(tree, files[-1][1], report)
            title = first.get("title") if first is not None else None
            yield from chat_conversations(
                _chat_messages(tree, files, first, report, meta, tick),
                source=source,
                chat_key=folder.rsplit("/", 1)[-1],
                source_id=folder.rsplit("/", 1)[-1],
                title=repair_text(title) if isinstance(title, str) else None,
                gap_hours=gap,
                report=report,
            )
            everyone.append(meta["participants"])
        owner = _profile_owner(tree)
        if owner is None and len(everyone) > 1:
            common = set.intersection(*everyone)
            owner = next(iter(common)) if len(common) == 1 else None
        report.owner = owner if owner in report.participants else None
        report.owner_marked = report.owner is not None


def read(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, gap_hours: float | None = None
) -> Iterator[Conversation]:
    return _read(path, report, progress, gap_hours, "messenger")


def read_instagram(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, gap_hours: float | None = None
) -> Iterator[Conversation]:
    return _read(path, report, progress, gap_hours, "instagram")
