"""ChatGPT data export: `conversations.json` (alone, in its export folder, or inside the
export's .zip). Each conversation's `mapping` is a tree of nodes (edits and regenerations
are branches); the conversation the user last saw is the path from the root to
`current_node`. Hidden and system scaffolding (empty system prompts, hidden context
messages, non-text content) is skipped; timestamps are kept."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from cognitivetwin_core.conversation import ROLES, Conversation, Message
from cognitivetwin_core.data.importers.json_stream import iter_json_records
from cognitivetwin_core.data.importers.records import RecordError, make_conversation, optional_text, parse_time
from cognitivetwin_core.data.importers.report import ImportReport, ProgressCallback, Rejection

NAME = "chatgpt"
TITLE = "ChatGPT data export (conversations.json or .zip)"
FILE_FILTER = "ChatGPT export (conversations.json *.zip)"

_TEXT_TYPES = {"text", "multimodal_text", "code", "execution_output"}
_ROLES = {role: role for role in ROLES}


def _content_text(content: dict) -> str:
    kind = content.get("content_type")
    if kind == "code" or kind == "execution_output":
        text = content.get("text")
        if not isinstance(text, str):
            return ""
        language = content.get("language") if kind == "code" else ""
        if kind == "code" and language in (None, "unknown"):
            language = ""
        return f"```{language or ''}\n{text}\n```" if kind == "code" else text
    parts = content.get("parts")
    if not isinstance(parts, list):
        return ""
    # Image and file parts are objects (asset pointers): only the text survives.
    return "\n".join(part for part in parts if isinstance(part, str)).strip()


def _node_id(value, field: str) -> str | None:
    """A node reference (`parent`, a child, `current_node`): a string or null, nothing else."""
    if value is None or isinstance(value, str):
        return value
    raise RecordError(field, f"a node reference must be a string, got {type(value).__name__}")


def _path_to_current(mapping: dict, current: str) -> list[dict]:
    path = []
    seen = set()
    node_id = current
    while node_id is not None:
        if node_id in seen:
            raise RecordError("mapping", f"the mapping has a cycle at node {node_id!r}")
        seen.add(node_id)
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            raise RecordError(f"mapping.{node_id}", "current_node's path refers to a missing node")
        path.append(node)
        node_id = _node_id(node.get("parent"), f"mapping.{node_id}.parent")
    path.reverse()
    return path


def _last_leaf(mapping: dict, root: str) -> str:
    """Old exports lack current_node: follow the last child from the root (cycles refused)."""
    current = root
    seen = {current}
    while True:
        node = mapping.get(current)
        children = node.get("children") if isinstance(node, dict) else None
        if not children:
            return current
        if not isinstance(children, list):
            raise RecordError(f"mapping.{current}.children", "children must be a list of node ids")
        child = _node_id(children[-1], f"mapping.{current}.children")
        if child is None or child not in mapping:
            return current
        if child in seen:
            raise RecordError("mapping", f"the mapping's children form a cycle at node {child!r}")
        seen.add(child)
        current = child


def conversation_from_record(record, id_prefix: str) -> Conversation:
    if not isinstance(record, dict):
        raise RecordError(None, f"a record must be a JSON object, got {type(record).__name__}")
    mapping = record.get("mapping")
    if not isinstance(mapping, dict):
        raise RecordError("mapping", "missing mapping" if mapping is None else "mapping must be an object")
    current = _node_id(record.get("current_node"), "current_node")
    if current is None:
        roots = [key for key, node in mapping.items() if isinstance(node, dict) and node.get("parent") is None]
        if not roots:
            raise RecordError("current_node", "missing current_node and no root node")
        current = _last_leaf(mapping, roots[0])
    messages: list[Message] = []
    for node in _path_to_current(mapping, current):
        message = node.get("message")
        if not isinstance(message, dict):
            continue
        node_field = f"mapping.{node.get('id') or '?'}.message"
        metadata = message.get("metadata") or {}
        if isinstance(metadata, dict) and (
            metadata.get("is_visually_hidden_from_conversation") or metadata.get("is_user_system_message")
        ):
            continue
        author = message.get("author") or {}
        role = _ROLES.get(author.get("role") if isinstance(author, dict) else None)
        if role is None:
            raise RecordError(f"{node_field}.author.role", f"unknown author role {author!r}")
        content = message.get("content") or {}
        if not isinstance(content, dict) or content.get("content_type") not in _TEXT_TYPES:
            continue
        text = _content_text(content)
        if not text.strip():
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise RecordError(f"{node_field}.content", "not UTF-8 text") from None
        created_at = parse_time(message.get("create_time"), f"{node_field}.create_time")
        messages.append(Message(role=role, content=text, created_at=created_at))
    if not messages:
        raise RecordError("mapping", "empty conversation (no visible messages)")
    if messages[0].created_at is None:
        started = parse_time(record.get("create_time"), "create_time")
        messages[0].created_at = started
    record_id = optional_text(record, "conversation_id") or optional_text(record, "id")
    return make_conversation(record_id, NAME, messages, title=optional_text(record, "title"), id_prefix=id_prefix)


def _read_stream(stream, label: str, report: ImportReport, progress) -> Iterator[Conversation]:
    for index, line, record in iter_json_records(stream, label, report, progress):
        try:
            conversation = conversation_from_record(record, "chatgpt")
        except RecordError as exc:
            report.reject(Rejection(label, exc.reason, line=line, record=index, field=exc.field))
            continue
        report.accept(len(conversation.messages))
        yield conversation


def read(path: Path, report: ImportReport, progress: ProgressCallback | None = None) -> Iterator[Conversation]:
    path = Path(path)
    if path.is_dir():
        path = path / "conversations.json"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if info.filename.rsplit("/", 1)[-1] == "conversations.json"]
            if not members:
                report.reject(
                    Rejection(
                        str(path),
                        "the zip has no conversations.json: choose the ChatGPT "
                        "export's .zip or the conversations.json inside it",
                    )
                )
                return
            # Every export in the zip is read (the same conversation twice is stored once).
            for info in members:
                label = f"{path}!{info.filename}"
                problem = _member_problem(info)
                if problem:
                    report.reject(Rejection(label, problem))
                    continue
                with archive.open(info) as stream:
                    yield from _read_stream(stream, label, report, progress)
    else:
        with open(path, "rb") as stream:
            yield from _read_stream(stream, str(path), report, progress)


# What one archive member may unpack to. Reading stops at the size the zip declares (a
# member cannot unpack to more), so these bound the work; one record's size is bounded by
# json_stream.MAX_RECORD_BYTES.
MAX_MEMBER_BYTES = 16 << 30
MAX_RATIO = 200  # JSON packs 5-20x; far more is a zip bomb
_RATIO_FROM = 64 << 20


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an archive member is skipped, or None."""
    if info.flag_bits & 0x1:
        return "the file is encrypted in the zip: export it again without a password"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        return (
            f"the file is packed with a method this app cannot read ({info.compress_type}): unpack it with another tool"
        )
    if info.file_size > MAX_MEMBER_BYTES:
        return f"the file unpacks to {info.file_size >> 30} GiB, more than the {MAX_MEMBER_BYTES >> 30} GiB allowed"
    if info.file_size > _RATIO_FROM and info.file_size > MAX_RATIO * max(1, info.compress_size):
        return (
            f"the file unpacks to {info.file_size >> 20} MiB from {info.compress_size >> 10} KiB, which no real "
            "export does (a zip bomb?); it was not read"
        )
    return None
