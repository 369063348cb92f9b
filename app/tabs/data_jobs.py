"""Long work on the workspace's data (imports, exports) as plain functions for
`BackgroundJob`, and their descriptions: the Data tab's, and Phase 1's export of its
training file. Shared by tabs, so no tab's own module (pyproject's tab contracts).

Each `run_*` function has the `fn(progress, cancellation, *args)` shape: it opens its own
`Workspace` connection (the GUI keeps reading through its own while an import's
transaction is open), reports progress and checks the `Cancellation` at every tick. Raising
`cognitivetwin_core.errors.CancelledError` from the import's progress callback rolls the
whole import back, so a cancelled import writes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CognitiveTwinError

PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress signals a second reach the GUI


@dataclass(frozen=True)
class FileImporterChoice:
    name: str  # the registry's importer name
    label: str  # what the menu says
    file_filter: str  # a Qt file-dialog filter


def file_importers() -> list[FileImporterChoice]:
    """Every importer that reads a file, from the core's registry, for the Import menu."""
    from cognitivetwin_core.data.importers import IMPORTERS

    return [
        FileImporterChoice(info.name, info.title, f"{info.file_filter};;All files (*)")
        for info in IMPORTERS.values()
        if info.file_filter
    ]


class _Throttle:
    """Forwards a progress tick at most every PROGRESS_INTERVAL_S, checking cancel each time."""

    def __init__(self, progress, cancellation: Cancellation):
        self._progress = progress
        self._cancellation = cancellation
        self._last = 0.0

    def __call__(self, tick) -> None:
        self._cancellation.raise_if_cancelled("Cancelled: nothing was written.")
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            self._progress(tick)


def _open(workspace_path):
    from cognitivetwin_core.data.workspace import Workspace

    if workspace_path is None:
        raise CognitiveTwinError("No workspace is open: open or create one from the File menu first.")
    return Workspace.open(workspace_path)


def run_import(progress, cancellation: Cancellation, workspace_path, source, importer: str | None, strict: bool):
    """Import a file (`importer` None: detected from the file) or "demo" into the workspace."""
    from cognitivetwin_core.data.importers import import_into

    with _open(workspace_path) as workspace:
        return import_into(
            workspace, source, importer=importer, strict=strict, progress=_Throttle(progress, cancellation)
        )


def run_supabase_import(progress, cancellation: Cancellation, workspace_path, table: str, mapping: dict, strict: bool):
    """Read the URL and key from the keyring here, on the worker thread (an unlock prompt may block)."""
    from cognitivetwin_core.connections import secrets
    from cognitivetwin_core.data import importers
    from cognitivetwin_core.data.importers import import_into

    url = secrets.get_secret(secrets.SUPABASE_URL)
    key = secrets.get_secret(secrets.SUPABASE_KEY)
    if not url or not key:
        raise CognitiveTwinError(
            "No Supabase URL and key are saved: enter them in the Connections tab, press Save, then import again."
        )
    source = importers.SupabaseSource(
        url=url, key=key, table=table, mapping=importers.ColumnMapping.from_pairs(mapping)
    )
    with _open(workspace_path) as workspace:
        return import_into(workspace, source, strict=strict, progress=_Throttle(progress, cancellation))


def run_export(
    progress,
    cancellation: Cancellation,
    workspace_path,
    which: str,
    path: Path,
    base_model: str,
    validation_fraction: float = 0.0,
    privacy: str = "keep",
):
    """Phase 1: Together JSONL checked against `base_model` (tokens, context), with personal
    data kept, redacted or its conversations left out (`privacy`); Phase 2: the seed's
    trajectory JSONL. The core writes atomically: a cancel leaves no file behind."""
    from cognitivetwin_core.data import exports

    throttle = _Throttle(progress, cancellation)
    with _open(workspace_path) as workspace:
        total = workspace.count_conversations()

        def tick(done: int) -> None:
            throttle((f"Exported {done:,} of {total:,} conversations", done / total if total else None))

        throttle(("Preparing the export…", None))
        try:
            if which == "phase1":
                return exports.export_together(
                    workspace,
                    path,
                    base_model=base_model,
                    validation_fraction=validation_fraction,
                    progress=tick,
                    privacy=privacy,
                )
            return exports.export_trajectory(workspace, path, progress=tick)
        except OSError as exc:  # a folder that cannot be created or written: the user picks another
            raise CognitiveTwinError(
                f"Cannot write {path} ({exc.strerror or exc}): choose a folder you can write to."
            ) from exc


def run_privacy_check(progress, cancellation: Cancellation, workspace_path):
    """Personal data in the workspace's messages (a `PrivacySummary`), read off the GUI thread."""
    from cognitivetwin_core.data.privacy import scan_conversations

    throttle = _Throttle(progress, cancellation)
    with _open(workspace_path) as workspace:
        total = workspace.count_conversations()
        names = [item.name for item in workspace.speakers() if item.named]

        def tick(done: int) -> None:
            throttle((f"Checked {done:,} of {total:,} conversations", done / total if total else None))

        return scan_conversations(workspace.iter_conversations(), names, progress=tick)


def run_token_count(progress, cancellation: Cancellation, workspace_path, base_model: str) -> str:
    """Tokens of every message with the base's tokenizer (transformers loads here, off the GUI thread)."""
    from cognitivetwin_core.models.loader import load_tokenizer

    throttle = _Throttle(progress, cancellation)
    throttle(("Loading the tokenizer…", None))
    tokenizer = load_tokenizer(base_model)
    with _open(workspace_path) as workspace:
        total_messages = workspace.count_messages()
        tokens = done = 0
        for conversation in workspace.iter_conversations():
            texts = [message.content for message in conversation.messages]
            if texts:
                tokens += sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
            done += len(texts)
            throttle(
                (
                    f"Counting tokens: {done:,} of {total_messages:,} messages",
                    done / total_messages if total_messages else None,
                )
            )
    return f"{tokens:,} ({base_model} tokenizer, message texts only)"


def describe_progress(tick) -> tuple[str, float | None]:
    """A progress line and a fraction (None: unknown) for an ImportProgress or a (text, fraction) pair."""
    if isinstance(tick, tuple) and len(tick) == 2:
        return str(tick[0]), tick[1]
    fraction = getattr(tick, "fraction", None)
    conversations = getattr(tick, "conversations", None)
    messages = getattr(tick, "messages", None)
    unit = getattr(tick, "unit", "")
    if conversations is not None:
        text = f"{conversations:,} conversations, {messages or 0:,} messages read"
        done, total = getattr(tick, "done", None), getattr(tick, "total", None)
        if unit == "rows" and done is not None:
            text += f" ({done:,}{f' of {total:,}' if total else ''} rows)"
        return text, fraction
    return str(tick), fraction


def describe_report(report) -> str:
    """The import report in one paragraph: what was accepted, skipped and rejected."""
    from cognitivetwin_core.data.importers import IMPORTERS

    origin = "the demo dataset" if report.importer == "demo" else (Path(str(report.source)).name or str(report.source))
    recognised = IMPORTERS.get(report.importer)
    prefix = f"Recognised: {recognised.title}. " if recognised is not None and report.importer != "demo" else ""
    # Conversations already in the workspace are counted as read but not added again.
    stored = getattr(report, "conversations_stored", None)
    added = stored if stored is not None else report.conversations_accepted - report.duplicates
    if report.duplicates and added <= 0:
        text = prefix + (
            f"Nothing new from {origin}: its {report.duplicates:,} conversation"
            f"{'s were' if report.duplicates != 1 else ' was'} already in the workspace."
        )
    else:
        text = prefix + (
            f"Imported {report.conversations_accepted:,} conversation{'s' if report.conversations_accepted != 1 else ''} "
            f"({report.messages_accepted:,} messages) from {origin}."
        )
        if report.duplicates:
            text += (
                f" {report.duplicates:,} were already in the workspace and were skipped "
                f"({added:,} conversations, {report.messages_stored or 0:,} messages added)."
            )
    if len(getattr(report, "chats", None) or []) > 1:
        text += f" Chats: {', '.join(report.chats)}."
    if report.rejected:
        first = report.rejected[0]
        text += (
            f" {len(report.rejected):,} record{'s were' if len(report.rejected) != 1 else ' was'} rejected "
            f"(first: {first}). Fix {'them' if len(report.rejected) != 1 else 'it'} and import again to add "
            "the rest; the list is below."
        )
    if report.truncated_at:
        text += f" The file ends early ({report.truncated_at}): every complete conversation before that point was kept."
    if getattr(report, "participants", None):
        ranked = sorted(report.participants.items(), key=lambda item: (-item[1], item[0]))
        text += " Participants: " + ", ".join(f"{name} ({count:,})" for name, count in ranked[:8])
        text += f" and {len(ranked) - 8} more." if len(ranked) > 8 else "."
    skipped = getattr(report, "skipped_messages", None)
    if skipped:
        text += " Left out: " + ", ".join(f"{count:,} {kind}" for kind, count in sorted(skipped.items())) + "."
    if getattr(report, "owner_only", False):
        text += (
            " It holds only your own messages: they teach the twin your style, but make no reply examples "
            "(no one else's words are in it)."
        )
    if getattr(report, "owner_adopted", False) and report.owner not in ("user", "assistant"):
        text += f" The twin now speaks as {report.owner}, the export's owner; change it below."
    return text


def describe_export(summary) -> str:
    """The export summary in words (Together: examples, tokens, skips; trajectory: lines)."""
    text = getattr(summary, "text", None)
    if callable(text):
        return str(text())
    return (
        f"Wrote {summary.lines:,} lines (one per message, with its context) for {summary.conversations:,} "
        f"conversations to {summary.path}."
    )
