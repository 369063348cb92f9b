"""What the messenger importers (WhatsApp, Telegram) share: a chat is one stream of messages
over years, cut into conversations where the participants were silent for a while, with
each message's participant name kept (`Message.speaker`) and its time, so the temporal
coordinate is real. Roles are placeholders (`user`): the twin's speaker decides at export."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.report import ImportReport
from cognitivetwin_core.errors import InputError

DEFAULT_GAP_HOURS = 6.0
# The role every messenger message is stored with; the twin speaker maps names to roles at export.
PLACEHOLDER_ROLE = "user"


def message_ticker(progress, report: ImportReport, every: int = 5000):
    """A function to call once per message read: every `every` messages it reports progress
    (messages read, total unknown) to `progress`, when there is one."""
    from cognitivetwin_core.data.importers.report import ImportProgress

    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if progress is not None and count % every == 0:
            progress(ImportProgress(count, None, "messages", report.conversations_accepted, report.messages_accepted))

    return tick


def check_gap_hours(gap_hours: float | None) -> float:
    gap = DEFAULT_GAP_HOURS if gap_hours is None else float(gap_hours)
    if not gap > 0:
        raise InputError(f"The gap between conversations must be more than 0 hours, got {gap_hours}.")
    return gap


def _comparable(value: datetime) -> datetime:
    # Both kinds never meet within one chat; this only guards a chat mixing them.
    return value.replace(tzinfo=None) if value.tzinfo is not None else value


def split_at_gaps(messages: Iterable[Message], gap_hours: float) -> Iterator[list[Message]]:
    """Runs of messages with no silence longer than `gap_hours` between two of them."""
    gap = timedelta(hours=gap_hours)
    current: list[Message] = []
    last: datetime | None = None
    for message in messages:
        stamp = message.created_at
        if current and stamp is not None and last is not None and _comparable(stamp) - _comparable(last) > gap:
            yield current
            current = []
        current.append(message)
        if stamp is not None:
            last = stamp
    if current:
        yield current


def chat_conversations(
    messages: Iterable[Message],
    *,
    source: str,
    chat_key: str,
    title: str | None,
    gap_hours: float,
    report: ImportReport,
    source_id: str | None = None,
) -> Iterator[Conversation]:
    """The chat cut at gaps into conversations with stable ids (chat + first message's time),
    counting each participant's messages in the report. The source's own id of the chat
    (`source_id`; else its name, `title`) is part of its conversations' identity: the same
    words sent at the same minute into two chats are two conversations."""
    digest = hashlib.sha256(chat_key.encode("utf-8")).hexdigest()[:10]
    for number, run in enumerate(split_at_gaps(messages, gap_hours), start=1):
        first = run[0].created_at
        stamp = first.strftime("%Y%m%dT%H%M%S") if first is not None else f"n{number}"
        for message in run:
            if message.speaker is not None:
                report.participants[message.speaker] = report.participants.get(message.speaker, 0) + 1
        report.accept(len(run))
        yield Conversation(
            id=f"{source}-{digest}-{stamp}",
            source=source,
            messages=run,
            title=title,
            source_id=source_id if source_id is not None else title,
        )
