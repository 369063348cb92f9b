"""Importers: one module per source format, one registry, one way in.

- `read_conversations(path)` reads a file into conversations without a workspace.
- `import_into(workspace, path_or_source)` streams a file, the demo dataset ("demo") or a
  `SupabaseSource` into a workspace in one transaction, and returns the `ImportReport`.
- `IMPORTERS` lists them (name, title, file filter) for the app's file dialog.

Every importer yields conversations and records rejections (file, line or record, field,
reason) in the report; with `strict=True` the first rejection aborts and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.data.importers import (
    chat_jsonl,
    chatgpt_export,
    demo,
    discord,
    google_chat,
    imessage,
    mbox,
    meta_dyi,
    sharegpt,
    signal,
    supabase_table,
    telegram,
    trajectory_jsonl,
    whatsapp,
)
from cognitivetwin_core.data.importers.demo import demo_dataset_path
from cognitivetwin_core.data.importers.report import (
    ImportProgress,
    ImportReport,
    ProgressCallback,
    Rejection,
    StrictImportAborted,
)
from cognitivetwin_core.data.importers.supabase_table import ColumnMapping, SupabaseSource
from cognitivetwin_core.data.twin_speaker import SETTING_KEY as TWIN_SPEAKER_KEY
from cognitivetwin_core.errors import InputError, os_error, shown_path

__all__ = [
    "IMPORTERS",
    "ImporterInfo",
    "ImportProgress",
    "ImportReport",
    "Rejection",
    "StrictImportAborted",
    "ColumnMapping",
    "SupabaseSource",
    "demo_dataset_path",
    "detect_importer",
    "iter_source",
    "read_conversations",
    "import_into",
]


@dataclass(frozen=True)
class ImporterInfo:
    name: str
    title: str
    file_filter: str  # for a file dialog; "" when the source is not a file
    read: Callable[..., Iterator[Conversation]]
    # Messenger chats: one stream over years, cut into conversations at gaps (`gap_hours`).
    splits_at_gaps: bool = False


_CHAT_MODULES = (whatsapp, telegram, meta_dyi, imessage, discord, signal, google_chat)
IMPORTERS: dict[str, ImporterInfo] = {
    module.NAME: ImporterInfo(module.NAME, module.TITLE, module.FILE_FILTER, module.read, module in _CHAT_MODULES)
    for module in (
        chat_jsonl,
        trajectory_jsonl,
        sharegpt,
        chatgpt_export,
        whatsapp,
        telegram,
        meta_dyi,
        imessage,
        discord,
        signal,
        google_chat,
        mbox,
        supabase_table,
        demo,
    )
}
# Two more readers in modules that hold two formats of one platform.
IMPORTERS[meta_dyi.INSTAGRAM_NAME] = ImporterInfo(
    meta_dyi.INSTAGRAM_NAME, meta_dyi.INSTAGRAM_TITLE, meta_dyi.INSTAGRAM_FILE_FILTER, meta_dyi.read_instagram, True
)
IMPORTERS[discord.PACKAGE_NAME] = ImporterInfo(
    discord.PACKAGE_NAME, discord.PACKAGE_TITLE, discord.PACKAGE_FILE_FILTER, discord.read_package, True
)


# AI chats: the person is the user side (docs/twin-speaker.md).
_PERSON_IS_USER = (chat_jsonl.NAME, sharegpt.NAME, chatgpt_export.NAME, demo.NAME)


def _first_json_line(path: Path) -> dict | None:
    import json

    with open(path, "rb") as stream:
        for raw in stream:
            if raw.strip():
                try:
                    value = json.loads(raw.decode("utf-8", "replace").lstrip("\ufeff"))
                except ValueError:
                    return None
                return value if isinstance(value, dict) else None
    return None


def detect_importer(path: str | Path) -> ImporterInfo:
    """The importer for a file, from its name and its first bytes."""
    import zipfile

    path = Path(path)
    if not path.exists():
        raise InputError(f"No such file: {path}.")
    if path.is_dir():
        found = _detect_tree(path)
        if found is not None:
            return found
        if (path / "conversations.json").is_file():
            return IMPORTERS[chatgpt_export.NAME]
        raise InputError(
            f"{path} is a folder of no export this app knows (a ChatGPT, Messenger, Instagram, Discord, Signal "
            "(sigtop), Google Chat or mail export): choose the export's folder, its .zip or a file to import."
        )
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                if whatsapp.zip_has_chat(archive):
                    return IMPORTERS[whatsapp.NAME]
            found = _detect_tree(path)
            if found is not None:
                return found
        except (zipfile.BadZipFile, OSError):
            pass
        return IMPORTERS[chatgpt_export.NAME]
    with open(path, "rb") as stream:
        magic = stream.read(16)
        if magic[:4] == b"PK\x03\x04":
            raise InputError(f"{path} is a damaged or incomplete zip: copy or download it again.")
    if imessage.looks_like_chat_db(magic):
        return IMPORTERS[imessage.NAME]
    if path.suffix.lower() in (".jsonl", ".ndjson") or path.name.endswith(".jsonl.txt"):
        first = _first_json_line(path)
        if first is not None:
            if "trajectory" in first:
                return IMPORTERS[trajectory_jsonl.NAME]
            if "conversations" in first and "messages" not in first:
                return IMPORTERS[sharegpt.NAME]
        return IMPORTERS[chat_jsonl.NAME]
    with open(path, "rb") as stream:
        head = stream.read(1 << 16)
    if path.suffix.lower() == ".txt" and whatsapp.is_whatsapp_text(head):
        return IMPORTERS[whatsapp.NAME]
    if mbox.looks_like_mbox(head) or path.suffix.lower() in (".mbox", ".mbx"):
        return IMPORTERS[mbox.NAME]
    if discord.looks_like_chat_exporter(head):
        return IMPORTERS[discord.NAME]
    if signal.looks_like_sigtop(head):
        return IMPORTERS[signal.NAME]
    if b'"sender_name"' in head and b'"timestamp_ms"' in head:
        return _detect_tree(path) or IMPORTERS[meta_dyi.NAME]
    if b'"creator"' in head and b'"created_date"' in head:
        return IMPORTERS[google_chat.NAME]
    if telegram.looks_like_telegram(head):
        return IMPORTERS[telegram.NAME]
    if b'"mapping"' in head and (b'"current_node"' in head or b'"create_time"' in head):
        return IMPORTERS[chatgpt_export.NAME]
    if b'"conversations"' in head or b'"from"' in head:
        return IMPORTERS[sharegpt.NAME]
    if path.suffix.lower() == ".json" and b'"messages"' in head:
        raise InputError(
            f"{path} looks like chat messages in one JSON document: save it as JSON Lines "
            '(.jsonl, one {"messages": [...]} per line) to import it.'
        )
    raise InputError(
        f"Cannot tell the format of {path}: import a .jsonl (chat or trajectory), a ShareGPT "
        ".json, a ChatGPT export (conversations.json or .zip), a WhatsApp chat (.txt or .zip), a "
        "Telegram result.json, a Messenger or Instagram download, iMessage's chat.db, a Discord export, "
        "a Signal export (sigtop), a Google Chat Takeout, an .mbox, or choose the importer explicitly."
    )


def _detect_tree(path: Path) -> ImporterInfo | None:
    """The export a folder or zip holds, from its layout (and a look into its JSON files)."""
    from cognitivetwin_core.data.importers.export_tree import ExportTree

    with ExportTree(path) as tree:
        if meta_dyi.chat_files(tree):
            return IMPORTERS[meta_dyi.INSTAGRAM_NAME if meta_dyi.is_instagram(tree) else meta_dyi.NAME]
        if discord.is_package(tree):
            return IMPORTERS[discord.PACKAGE_NAME]
        if google_chat.chat_files(tree):
            return IMPORTERS[google_chat.NAME]
        if any(name.lower().endswith((".mbox", ".mbx")) for name in tree.names):
            return IMPORTERS[mbox.NAME]
        if any(name.rsplit("/", 1)[-1] == "conversations.json" for name in tree.names):
            return None  # ChatGPT's export
        for name in list(tree.matching(".json"))[:20]:
            with tree.open(name) as stream:
                head = stream.read(1 << 14)
            if discord.looks_like_chat_exporter(head):
                return IMPORTERS[discord.NAME]
            if signal.looks_like_sigtop(head):
                return IMPORTERS[signal.NAME]
    return None


def check_readable(path: Path) -> None:
    """Refuse, in one sentence, a path that cannot be imported: a name that is not UTF-8,
    something missing or unreadable, or not a regular file (a FIFO would block forever)."""
    import stat

    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            f"The file name {shown_path(path)} is not UTF-8 text: rename it (for example to plain "
            "letters and digits) and import it again."
        ) from None
    if not path.exists() and not path.is_symlink():
        raise InputError(f"No such file: {path}.")
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise os_error(exc, "reading", path) from None
    if stat.S_ISDIR(mode):
        return  # a ChatGPT export folder; detect_importer checks what is inside
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} is not a regular file (a pipe, socket or device): choose a file to import.")
    try:
        with open(path, "rb") as stream:
            stream.read(1)
    except PermissionError as exc:
        if path.name == "chat.db" or "Library/Messages" in path.as_posix():
            raise InputError(f"Cannot read {path}: {imessage.FULL_DISK_ACCESS}.") from None
        raise os_error(exc, "reading", path) from None
    except OSError as exc:
        raise os_error(exc, "reading", path) from None


def _guarded(conversations: Iterator[Conversation], path: Path) -> Iterator[Conversation]:
    """The importer's stream, with a read failure or a damaged archive as one sentence (the
    import is all or nothing, so nothing of it is kept)."""
    import zipfile
    import zlib

    try:
        yield from conversations
    except OSError as exc:
        raise os_error(exc, "reading", path) from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputError(
            f"The archive {path} is damaged ({exc or 'it ends early'}): copy or download it again; nothing was imported."
        ) from None


def iter_source(
    path_or_source,
    *,
    importer: str | None = None,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    gap_hours: float | None = None,
) -> tuple[Iterator[Conversation], ImportReport]:
    """(conversations, report): the conversations stream lazily and fill the report as they go.
    `gap_hours` (messenger chats) is the silence that starts a new conversation (default 6)."""
    if isinstance(path_or_source, SupabaseSource):
        info = IMPORTERS[supabase_table.NAME]
        report = ImportReport(path_or_source.label, info.name, strict=strict)
        return info.read(path_or_source, report, progress), report
    if importer == demo.NAME or (importer is None and str(path_or_source) == "demo"):
        info = IMPORTERS[demo.NAME]
        report = ImportReport("demo", info.name, strict=strict, owner="user", owner_marked=True)
        return info.read(None, report, progress), report
    path = Path(os.fspath(path_or_source)).expanduser()
    check_readable(path)
    if importer is not None:
        if importer not in IMPORTERS or importer == supabase_table.NAME:
            raise InputError(
                f"Unknown importer {importer!r}: use one of "
                f"{', '.join(name for name in IMPORTERS if name != supabase_table.NAME)}."
            )
        if not path.exists():
            raise InputError(f"No such file: {path}.")
        info = IMPORTERS[importer]
    else:
        info = detect_importer(path)
    report = ImportReport(str(path), info.name, strict=strict)
    if info.name in _PERSON_IS_USER:
        report.owner, report.owner_marked = "user", True
    if info.splits_at_gaps:
        return _guarded(info.read(path, report, progress, gap_hours=gap_hours), path), report
    return _guarded(info.read(path, report, progress), path), report


def read_conversations(
    path,
    *,
    importer: str | None = None,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    gap_hours: float | None = None,
) -> tuple[list[Conversation], ImportReport]:
    """Read a file (or "demo") into memory, without a workspace."""
    conversations, report = iter_source(path, importer=importer, strict=strict, progress=progress, gap_hours=gap_hours)
    return list(conversations), report


def import_into(
    workspace,
    path_or_source,
    *,
    importer: str | None = None,
    strict: bool = False,
    progress: ProgressCallback | None = None,
    gap_hours: float | None = None,
    me: str | None = None,
) -> ImportReport:
    """Import a file, "demo" or a SupabaseSource into the workspace, all or nothing.
    Duplicates (the same conversation already stored: docs/data-and-model.md) are counted,
    not stored again. `me` (who the person is: a role or a participant) is checked against
    the workspace with this import in it before anything is kept, and saved with it: an
    unknown name keeps nothing and raises InputError."""
    conversations, report = iter_source(
        path_or_source, importer=importer, strict=strict, progress=progress, gap_hours=gap_hours
    )
    location = path_or_source.label if isinstance(path_or_source, SupabaseSource) else report.source

    def set_me(db) -> None:
        report.twin_speaker = workspace.resolve_speaker(me)
        workspace.write_setting(db, TWIN_SPEAKER_KEY, report.twin_speaker)

    result = workspace.add_conversations(
        conversations,
        source_label=report.source,
        importer=report.importer,
        location=location,
        report=report.to_dict,
        before_commit=set_me if me is not None else None,
    )
    report.duplicates = result.duplicates
    report.conversations_stored = result.conversations_added
    report.messages_stored = result.messages_added
    report.import_id = result.import_id
    report.conversation_ids = result.ids
    if report.conversations_accepted and me is None:
        from cognitivetwin_core.data.person_identity import adopt_owner

        report.owner_adopted = adopt_owner(workspace, report.owner if report.owner_marked else None)
        if report.owner_adopted:
            report.twin_speaker = workspace.twin_speaker()
    return report
