"""Discord: DiscordChatExporter's JSON, and Discord's own data package.

DiscordChatExporter (JSON format) writes one file per channel: `{"guild": {...}, "channel":
{"id", "name", ...}, "dateRange", "exportedAt", "messages": [{"id", "type", "timestamp",
"timestampEdited", "content", "author": {"id", "name", "nickname", "isBot"}, "reference"?,
"attachments", ...}], "messageCount"}`. `type` is "Default" or "Reply" for what people wrote;
calls, pins, joins, renames and the rest are skipped and counted. `timestamp` is ISO 8601 with
its offset; an edited message is stored once, with its final text. The file is streamed (a
channel can hold millions of messages); a folder or zip of such files imports every channel.
The speaker is the author's `name` (the account's username; the `nickname` differs per server).

Discord's data package ("Request all of my data") holds only the owner's messages:
`messages/index.json` maps channel ids to names, `messages/c<id>/channel.json` describes one
channel and `messages/c<id>/messages.json` (`[{"ID", "Timestamp", "Contents", "Attachments"}]`)
or, in older packages, `messages.csv` (same columns; folders without the `c`) its messages. The
owner is named by `account/user.json`. These messages teach the twin's style but make no chat
pairs (no one else's words are there); the report says so.
"""

from __future__ import annotations

import csv
import io
import json
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
from cognitivetwin_core.data.importers.records import RecordError, message_text, parse_time
from cognitivetwin_core.data.importers.report import ImportProgress, ImportReport, ProgressCallback, Rejection
from cognitivetwin_core.data.importers.telegram import _chat_messages, _Malformed, _report_break, _Walker

NAME = "discord-chat-exporter"
TITLE = "Discord channel (DiscordChatExporter JSON)"
FILE_FILTER = "DiscordChatExporter JSON (*.json *.zip)"
PACKAGE_NAME = "discord-package"
PACKAGE_TITLE = "Discord data package (your own messages)"
PACKAGE_FILE_FILTER = "Discord data package (*.zip)"

_SPOKEN_TYPES = ("Default", "Reply")
_PACKAGE_CHANNEL = re.compile(r"(?:^|/)messages/c?(?P<id>\d+)/messages\.(?P<ext>json|csv)$", re.IGNORECASE)


def looks_like_chat_exporter(head: bytes) -> bool:
    return b'"guild"' in head and b'"channel"' in head and (b'"messages"' in head or b'"exportedAt"' in head)


def package_channels(tree: ExportTree) -> dict[str, str]:
    """Channel id → its messages file (messages.json preferred over messages.csv)."""
    found: dict[str, str] = {}
    for name in tree.names:
        match = _PACKAGE_CHANNEL.search(name)
        if match and (match["id"] not in found or match["ext"].lower() == "json"):
            found[match["id"]] = name
    return found


def is_package(tree: ExportTree) -> bool:
    return any(name.lower().endswith("messages/index.json") for name in tree.names) and bool(package_channels(tree))


# ----- DiscordChatExporter -------------------------------------------------------------------


def exporter_message(record, report: ImportReport) -> Message | None:
    if not isinstance(record, dict):
        raise RecordError(None, f"a message must be an object, got {type(record).__name__}")
    kind = record.get("type", "Default")
    if kind not in _SPOKEN_TYPES:
        report.skip({"Call": "calls", "ChannelPinnedMessage": "pins", "GuildMemberJoin": "joins"}.get(kind, "system"))
        return None
    author = record.get("author")
    if not isinstance(author, dict):
        raise RecordError("author", "the message names no author")
    # The account's name, the same in every server and in the data package (a nickname changes
    # from server to server and would split one person).
    name = author.get("name") or author.get("nickname")
    if not isinstance(name, str) or not name.strip():
        raise RecordError("author.name", "the author has no name")
    text = message_text(record, "content")
    if not text:
        has_media = record.get("attachments") or record.get("stickers") or record.get("embeds")
        report.skip("media omitted" if has_media else "empty")
        return None
    created = parse_time(record.get("timestamp"), "timestamp")
    return Message(role=PLACEHOLDER_ROLE, content=text, created_at=created, speaker=name.strip())


def _exporter_file(tree: ExportTree, name: str, report: ImportReport, gap: float, tick) -> Iterator[Conversation]:
    label = tree.label(name)
    with tree.open(name) as stream:
        walker = _Walker(stream)
        channel: dict = {}
        guild: dict = {}

        try:
            for key in walker.object_keys():
                if key == "messages":
                    title = channel.get("name")
                    if isinstance(guild.get("name"), str) and guild.get("name") != "Direct Messages":
                        title = f"{title} ({guild['name']})"
                    yield from chat_conversations(
                        _chat_messages(walker, label, report, tick, exporter_message),
                        source="discord",
                        chat_key=str(channel.get("id") or name),
                        source_id=str(channel.get("id") or name),
                        title=title if isinstance(title, str) else None,
                        gap_hours=gap,
                        report=report,
                    )
                    if walker.failed is not None:
                        raise walker.failed
                elif key in ("channel", "guild"):
                    value = walker.value()
                    if isinstance(value, dict):
                        (channel if key == "channel" else guild).update(value)
                else:
                    walker.value()
        except _Malformed as exc:
            _report_break(walker, exc, label, report)


def read(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, gap_hours: float | None = None
) -> Iterator[Conversation]:
    gap = check_gap_hours(gap_hours)
    tick = message_ticker(progress, report)
    with ExportTree(path) as tree:
        files = []
        for name in tree.matching(".json"):
            with tree.open(name) as stream:
                if looks_like_chat_exporter(stream.read(1 << 14)):
                    files.append(name)
        if not files:
            report.reject(Rejection(str(path), "no DiscordChatExporter JSON channel file in it (export as JSON)"))
        for name in files:
            yield from _exporter_file(tree, name, report, gap, tick)


# ----- Discord's data package ----------------------------------------------------------------


def _package_owner(tree: ExportTree) -> str | None:
    for name in tree.names:
        if name.lower().endswith("account/user.json"):
            try:
                user = load_json(tree, name)
            except ValueError:
                return None
            for key in ("username", "global_name"):
                if isinstance(user.get(key), str) and user[key].strip():
                    return user[key].strip()
    return None


def _package_time(value: str) -> datetime:
    stamp = parse_time(value, "Timestamp")
    if stamp is None:
        raise RecordError("Timestamp", "missing time")
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _package_rows(tree: ExportTree, name: str) -> list[dict]:
    raw = tree.read_bytes(name).decode("utf-8-sig")
    if name.lower().endswith(".json"):
        rows = json.loads(raw)
        return rows if isinstance(rows, list) else []
    return list(csv.DictReader(io.StringIO(raw)))


def read_package(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None, *, gap_hours: float | None = None
) -> Iterator[Conversation]:
    gap = check_gap_hours(gap_hours)
    with ExportTree(path) as tree:
        owner = _package_owner(tree) or "Me"
        report.owner, report.owner_marked, report.owner_only = owner, True, True
        index_name = next((n for n in tree.names if n.lower().endswith("messages/index.json")), None)
        titles = {}
        if index_name is not None:
            try:
                titles = load_json(tree, index_name) or {}
            except ValueError as exc:
                report.reject(Rejection(tree.label(index_name), f"bad JSON ({exc}); channel names are unknown"))
        channels = package_channels(tree)
        if not channels:
            report.reject(Rejection(str(path), "no messages/c<id>/messages.json (or .csv) in this data package"))
        for number, (channel_id, name) in enumerate(sorted(channels.items()), start=1):
            label = tree.label(name)
            try:
                rows = _package_rows(tree, name)
            except (ValueError, csv.Error) as exc:
                report.reject(Rejection(label, f"cannot read it ({exc}); this channel was skipped"))
                continue
            messages = []
            for index, row in enumerate(rows):
                try:
                    if not isinstance(row, dict):
                        raise RecordError(None, "a message must be an object")
                    text = (row.get("Contents") or "").strip()
                    if not text:
                        report.skip("media omitted" if row.get("Attachments") else "empty")
                        continue
                    created = _package_time(row.get("Timestamp"))
                except RecordError as exc:
                    line = index + 2 if name.lower().endswith(".csv") else None
                    report.reject(Rejection(label, exc.reason, line=line, record=index, field=exc.field))
                    continue
                messages.append(Message(role=PLACEHOLDER_ROLE, content=text, created_at=created, speaker=owner))
            messages.sort(key=lambda message: message.created_at)
            title = titles.get(channel_id) if isinstance(titles, dict) else None
            yield from chat_conversations(
                messages,
                source="discord",
                chat_key=channel_id,
                source_id=channel_id,
                title=title if isinstance(title, str) else None,
                gap_hours=gap,
                report=report,
            )
            if progress is not None:
                progress(
                    ImportProgress(
                        number, len(channels), "channels", report.conversations_accepted, report.messages_accepted
                    )
                )
