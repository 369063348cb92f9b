"""What an import accepted and rejected, record by record, and how progress is reported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from cognitivetwin_core.errors import InputError


@dataclass(frozen=True)
class Rejection:
    """One rejected record: where it is (file, line or record number), which field, why."""

    file: str
    reason: str
    line: int | None = None
    record: int | None = None
    field: str | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [where]
        if self.record is not None:
            parts.append(f"record {self.record}")
        if self.field:
            parts.append(f"field {self.field!r}")
        return ", ".join(parts) + f": {self.reason}"


class StrictImportAborted(InputError):
    """A strict import met a rejected record: nothing was written."""

    def __init__(self, rejection: Rejection):
        self.rejection = rejection
        super().__init__(
            f"Import aborted, nothing written (strict mode): {rejection}. "
            "Fix the record or import without --strict to skip it."
        )


@dataclass
class ImportProgress:
    """A progress tick: `done` of `total` (None when unknown) in `unit`s, plus what was read so far."""

    done: int
    total: int | None
    unit: str  # "bytes", "rows" or "conversations"
    conversations: int = 0
    messages: int = 0

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None


ProgressCallback = Callable[[ImportProgress], None]

# A dump with millions of bad records keeps the first ones in detail and counts the rest.
MAX_DETAILED_REJECTIONS = 1000


@dataclass
class ImportReport:
    source: str
    importer: str
    conversations_accepted: int = 0
    messages_accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    rejected_total: int = 0
    # Where a file ended early (truncated mid-record), in words; None when it ended cleanly.
    truncated_at: str | None = None
    warnings: list[str] = field(default_factory=list)
    strict: bool = False
    import_id: int | None = None
    # Messenger exports: messages per participant, and what was skipped by kind
    # ("media omitted", "deleted", "system"), counted rather than imported.
    participants: dict[str, int] = field(default_factory=dict)
    skipped_messages: dict[str, int] = field(default_factory=dict)
    # Who made the export, when the file tells (Telegram's personal_information, or the one
    # participant of a two-person WhatsApp chat not named in its title): a suggestion for "me".
    owner: str | None = None
    # The chats of an export holding several (a WhatsApp zip with one text per chat), by name.
    chats: list[str] = field(default_factory=list)
    # What the workspace kept (duplicates aside) and who the person is, once imported.
    conversations_stored: int | None = None
    messages_stored: int | None = None
    twin_speaker: str | None = None
    # Whether the export itself marks its owner (is_from_me, outgoing, a profile or account
    # file, the user side of an AI chat), not a guess: only then does the owner become the
    # twin speaker on import (docs/importers.md).
    owner_marked: bool = False
    # The export holds only the owner's own messages (Discord's data package, a sent-mail
    # folder): they teach the twin's style, but there are no replies to learn (docs/importers.md).
    owner_only: bool = False
    # Whether the owner became the workspace's twin speaker (no one was chosen before).
    owner_adopted: bool = False
    conversation_ids: list[str] = field(default_factory=list, repr=False)

    def reject(self, rejection: Rejection) -> None:
        """Record a rejection; in strict mode, abort the whole import instead."""
        self.rejected_total += 1
        if len(self.rejected) < MAX_DETAILED_REJECTIONS:
            self.rejected.append(rejection)
        if self.strict:
            raise StrictImportAborted(rejection)

    def accept(self, messages: int) -> None:
        self.conversations_accepted += 1
        self.messages_accepted += messages

    def skip(self, kind: str) -> None:
        self.skipped_messages[kind] = self.skipped_messages.get(kind, 0) + 1

    @property
    def ok(self) -> bool:
        return not self.rejected_total and self.truncated_at is None

    def to_dict(self) -> dict:
        data = asdict(self)
        # Known once the import is stored: its record holds the counts, the settings the speaker.
        for key in ("conversation_ids", "conversations_stored", "messages_stored", "twin_speaker"):
            data.pop(key)
        data["rejected_count"] = self.rejected_total
        return data

    def summary(self) -> str:
        text = f"{self.source}: {self.conversations_accepted} conversations, {self.messages_accepted} messages accepted"
        if self.duplicates:
            text += (
                f", {self.duplicates} already in the workspace ({self.conversations_stored} conversations, "
                f"{self.messages_stored} messages added)"
            )
        if self.rejected_total:
            text += f", {self.rejected_total} records rejected"
        if self.truncated_at:
            text += f"; the file ends early ({self.truncated_at})"
        if len(self.chats) > 1:
            text += f"\nChats ({len(self.chats)}): " + ", ".join(self.chats)
        if self.participants:
            ranked = sorted(self.participants.items(), key=lambda item: (-item[1], item[0]))
            text += "\nParticipants: " + ", ".join(
                f"{name} ({count} message{'' if count == 1 else 's'})" for name, count in ranked
            )
        if self.owner in ("user", "assistant"):
            text += f"\nYour side of these chats: the {self.owner} messages"
        elif self.owner and self.owner_marked:
            text += f"\nThe export's owner (you): {self.owner}"
        elif self.owner:
            text += f"\nThis export looks like {self.owner}'s"
        if self.owner_only:
            text += (
                "\nIt holds only your own messages: they teach the twin your style (style signature, Phase 2's "
                "style head), but make no reply examples, since no one else's words are there"
            )
        if self.skipped_messages:
            text += "\nSkipped: " + ", ".join(
                f"{count} {kind}" for kind, count in sorted(self.skipped_messages.items())
            )
        return text
