"""A Supabase table of conversation turns (default `memory_turns`), read with supabase-py.

Rows are paged with `.range()` (PostgREST `offset`/`limit`; Supabase caps a response at
1000 rows) in a total order: conversation, turn order, then the row id, so no row is
skipped or repeated across pages. The mapped columns are checked first, transient errors
(503/520/502/504, network) are retried with backoff, and every failure a user can fix
(wrong URL, wrong key, missing table or column) becomes one plain sentence. The key is
never put in a message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cognitivetwin_core.connections.checks import DEFAULT_SUPABASE_TABLE
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.importers.records import RecordError, check_text, map_role, parse_time
from cognitivetwin_core.data.importers.report import ImportProgress, ImportReport, ProgressCallback, Rejection
from cognitivetwin_core.errors import CognitiveTwinError, InputError

NAME = "supabase"
TITLE = "Supabase table"
FILE_FILTER = ""
DEFAULT_TABLE = DEFAULT_SUPABASE_TABLE  # the one name, shared with the connection check
MAX_PAGE_ROWS = 1000  # Supabase's default db-max-rows

log = logging.getLogger("cognitivetwin.importers.supabase")

_TRANSIENT_CODES = {"PGRST002", "502", "503", "504", "520", "PGRST001"}
_MISSING_TABLE_CODES = {"PGRST205", "42P01", "PGRST106"}


@dataclass
class ColumnMapping:
    """Which table column holds each field. Timestamp, turn order and row id are optional."""

    conversation_id: str = "conversation_id"
    role: str = "role"
    content: str = "content"
    timestamp: str | None = "created_at"
    turn_order: str | None = "turn_index"
    row_id: str | None = "id"
    # Fields the user set explicitly: those must exist; optional defaults may be absent.
    explicit: set[str] = field(default_factory=set, compare=False, repr=False)

    REQUIRED = ("conversation_id", "role", "content")
    OPTIONAL = ("timestamp", "turn_order", "row_id")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return cls.REQUIRED + cls.OPTIONAL

    @classmethod
    def from_pairs(cls, pairs: list[str] | dict[str, str] | None) -> ColumnMapping:
        """From `COLUMN=FIELD` pairs (the CLI's --map), or a {field: column} dict (the app)."""
        mapping = cls()
        if not pairs:
            return mapping
        items: list[tuple[str, str]]
        if isinstance(pairs, dict):
            items = [(column, name) for name, column in pairs.items()]
        else:
            items = []
            for pair in pairs:
                column, sep, name = pair.partition("=")
                if not sep:
                    raise InputError(
                        f"Bad column mapping {pair!r}: write COLUMN=FIELD, e.g. session_id=conversation_id."
                    )
                items.append((column.strip(), name.strip()))
        for column, name in items:
            if name not in cls.field_names():
                raise InputError(
                    f"Unknown field {name!r} in the column mapping: use one of {', '.join(cls.field_names())}."
                )
            if not column and name in cls.REQUIRED:
                raise InputError(f"The field {name!r} needs a column.")
            setattr(mapping, name, column or None)
            mapping.explicit.add(name)
        return mapping

    def columns(self) -> dict[str, str]:
        """{field: column} for the fields in use."""
        return {name: getattr(self, name) for name in self.field_names() if getattr(self, name)}


@dataclass
class SupabaseSource:
    url: str
    key: str = field(repr=False)
    table: str = DEFAULT_TABLE
    mapping: ColumnMapping = field(default_factory=ColumnMapping)
    page_size: int = MAX_PAGE_ROWS
    retries: int = 3
    retry_delay: float = 1.0

    @property
    def label(self) -> str:
        return f"supabase:{self.table}"


def _client(source: SupabaseSource):
    import httpx
    from supabase import ClientOptions, create_client
    from supabase._sync.client import SupabaseException

    url = (source.url or "").strip().rstrip("/")
    if not url:
        raise InputError("No Supabase URL: set it in Connections (or SUPABASE_URL), e.g. https://xyz.supabase.co.")
    if not source.key:
        raise InputError("No Supabase API key: set it in Connections (or SUPABASE_KEY).")
    try:
        # Our own HTTP client (with its timeout) avoids postgrest's deprecated timeout/verify
        # arguments; retries are ours (below), which cover more transient cases and log them.
        options = ClientOptions(postgrest_client_retry=False, httpx_client=httpx.Client(timeout=30.0))
        return create_client(url, source.key, options=options)
    except SupabaseException as exc:
        raise InputError(
            f"The Supabase URL {url!r} is not valid ({exc.message}): it must look like https://xyz.supabase.co."
        ) from None


def _explain(exc: Exception, source: SupabaseSource) -> CognitiveTwinError:
    import httpx
    from postgrest.exceptions import APIError

    url = source.url.rstrip("/")
    if isinstance(exc, APIError):
        code = exc.code
        message = exc.message or ""
        if "invalid api key" in message.lower() or code in ("401", "PGRST301", "PGRST302"):
            return CognitiveTwinError(
                "Supabase rejected the API key (401 Invalid API key): check the key in "
                "Connections (the project's anon or service_role key)."
            )
        if code in _MISSING_TABLE_CODES:
            return InputError(
                f"Supabase has no table {source.table!r} in the public schema: check the table "
                "name (--table) or create it."
            )
        if code == "42703":
            return InputError(f"Supabase says: {message}. Check the column mapping (--map COLUMN=FIELD).")
        if code == "404":
            return CognitiveTwinError(
                f"{url} answered 404 for the REST API: it does not look like a Supabase "
                "project URL (https://xyz.supabase.co)."
            )
        if code in ("403", "42501"):
            return CognitiveTwinError(
                f"Supabase refused to read {source.table!r} ({message}): use a key whose "
                "role may read the table (service_role) or add a row-level security policy."
            )
        return CognitiveTwinError(f"Supabase returned an error reading {source.table!r}: {message or code}.")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return InputError(f"The Supabase URL {url!r} is not valid: it must look like https://xyz.supabase.co.")
    if isinstance(exc, httpx.TimeoutException):
        return CognitiveTwinError(f"Supabase at {url} did not answer in time: check your network and try again.")
    if isinstance(exc, httpx.TransportError):
        return CognitiveTwinError(f"Cannot reach Supabase at {url}: check the project URL and your network.")
    return CognitiveTwinError(f"Reading Supabase failed: {exc}.")


def _is_transient(exc: Exception) -> bool:
    import httpx
    from postgrest.exceptions import APIError

    if isinstance(exc, APIError):
        return exc.code in _TRANSIENT_CODES
    return isinstance(
        exc, (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout, httpx.WriteError)
    )


def _execute(make_query: Callable, source: SupabaseSource, sleep=time.sleep):
    """Run a query with retries; None when PostgREST says the offset is past the end (416)."""
    from postgrest.exceptions import APIError

    attempt = 0
    while True:
        try:
            return make_query().execute()
        except Exception as exc:
            import httpx

            if not isinstance(exc, (APIError, httpx.HTTPError)):
                raise
            if isinstance(exc, APIError) and exc.code == "PGRST103":
                return None
            if attempt < source.retries and _is_transient(exc):
                delay = source.retry_delay * (2**attempt)
                log.info(
                    "Supabase transient error (%s), retry %d in %.1fs", getattr(exc, "code", exc), attempt + 1, delay
                )
                sleep(delay)
                attempt += 1
                continue
            raise _explain(exc, source) from None


def _resolve_columns(client, source: SupabaseSource, report: ImportReport) -> dict[str, str]:
    """The mapped columns that exist; a clear error for a missing required or explicit one."""
    from postgrest.exceptions import APIError

    mapping = source.mapping
    wanted = mapping.columns()
    probe = _execute(lambda: client.table(source.table).select("*").limit(1), source)
    if probe is not None and probe.data:
        available = set(probe.data[0])
        resolved = {}
        for name, column in wanted.items():
            if column in available:
                resolved[name] = column
            elif name in mapping.REQUIRED or name in mapping.explicit:
                raise InputError(
                    f"The table {source.table!r} has no column {column!r} (mapped to {name}); its columns are "
                    f"{', '.join(sorted(available))}. Map it with --map COLUMN={name}."
                )
            else:
                report.warnings.append(f"no column {column!r} for {name}: read without it")
        return resolved
    # An empty table: ask for the columns themselves, dropping absent optional defaults.
    resolved = dict(wanted)
    while True:
        try:
            client.table(source.table).select(",".join(resolved.values())).limit(1).execute()
            return resolved
        except APIError as exc:
            missing = next(
                (
                    name
                    for name, column in resolved.items()
                    if exc.code == "42703" and f".{column} " in f"{exc.message} "
                ),
                None,
            )
            if missing is None or missing in mapping.REQUIRED or missing in mapping.explicit:
                raise _explain(exc, source) from None
            del resolved[missing]


def read(
    source: SupabaseSource, report: ImportReport, progress: ProgressCallback | None = None
) -> Iterator[Conversation]:
    client = _client(source)
    try:
        yield from _read_rows(client, source, report, progress)
    finally:
        client.options.httpx_client.close()


def _read_rows(
    client, source: SupabaseSource, report: ImportReport, progress: ProgressCallback | None
) -> Iterator[Conversation]:
    label = source.label
    columns = _resolve_columns(client, source, report)
    conversation_column = columns["conversation_id"]
    order = [conversation_column] + [columns[name] for name in ("turn_order", "timestamp", "row_id") if name in columns]
    selected = ",".join(dict.fromkeys(columns.values()))
    page_size = max(1, min(source.page_size, MAX_PAGE_ROWS))

    def page(offset: int):
        def query():
            builder = client.table(source.table).select(selected, count="exact")
            for column in order:
                builder = builder.order(column)
            return builder.range(offset, offset + page_size - 1)

        return query

    current_id = None
    current: list[Message] = []
    current_bad = False
    offset = 0
    total = None

    def finish() -> Conversation | None:
        if current_id is None or current_bad or not current:
            return None
        report.accept(len(current))
        return Conversation(id=str(current_id), source=NAME, messages=list(current), source_id=str(current_id))

    while total is None or offset < total:
        response = _execute(page(offset), source)
        if response is None:
            break  # the table shrank while reading: the offset is past the end
        rows = response.data or []
        total = (
            response.count
            if response.count is not None
            else (offset + len(rows) if len(rows) < page_size else offset + len(rows) + 1)
        )
        if not rows:
            break
        for number, row in enumerate(rows, start=offset + 1):
            conversation_id = row.get(conversation_column)
            if conversation_id != current_id:
                done = finish()
                if done is not None:
                    yield done
                current_id, current, current_bad = conversation_id, [], False
            if current_bad:
                continue
            try:
                if conversation_id is None or conversation_id == "":
                    raise RecordError(conversation_column, "empty conversation id")
                role = map_role(row.get(columns["role"]), columns["role"], aliases=True)
                content = check_text(row.get(columns["content"]), columns["content"])
                created_at = (
                    parse_time(row.get(columns["timestamp"]), columns["timestamp"]) if "timestamp" in columns else None
                )
            except RecordError as exc:
                current_bad = True
                report.reject(
                    Rejection(
                        label,
                        f"{exc.reason} (conversation {conversation_id!r} skipped)",
                        record=number,
                        field=exc.field,
                    )
                )
                continue
            current.append(Message(role=role, content=content, created_at=created_at))
        offset += len(rows)
        if progress is not None:
            progress(ImportProgress(offset, total, "rows", report.conversations_accepted, report.messages_accepted))
    done = finish()
    if done is not None:
        yield done
