"""A loopback fake of Supabase's REST endpoint (PostgREST 12 behind the Supabase gateway),
backed by a real SQLite database, for tests that drive the real supabase-py client.

It answers what a reader of a table uses, as docs/supabase.md records it:
`GET|HEAD /rest/v1/<table>` with `select`, `order` (`col.asc|desc[.nullsfirst|.nullslast]`),
filters (`eq neq gt gte lt lte like ilike in is`), `offset`/`limit` or a `Range` header,
`Prefer: count=exact` (206 + `Content-Range: 0-999/2942`; 416 `PGRST103` past the end),
the 1000-row cap (`db-max-rows`), the gateway's 401 "Invalid API key", 404 for a missing
table (`PGRST205`, or `42P01` as PostgREST 12 said it), 400 `42703` for an unknown column.
Fault injection: `fail_next(n, status=503)` answers the next n requests with a transient
error. Every request is recorded in `requests` (header names lower-cased).

    with PostgrestServer(db_path, key="k") as server:
        client = supabase.create_client(server.url, "k")
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "like": "LIKE", "ilike": "LIKE"}
_RESERVED = {"select", "order", "offset", "limit", "on_conflict", "columns"}


class _Error(Exception):
    def __init__(self, status: int, body: dict | None, headers: dict | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}


def _pg_error(status: int, code: str | None, message: str, details=None, hint=None) -> _Error:
    return _Error(status, {"code": code, "details": details, "hint": hint, "message": message})


class PostgrestServer:
    def __init__(
        self, db_path, *, key: str = "test-service-key", max_rows: int = 1000, missing_table_code: str = "PGRST205"
    ):
        self.db_path = str(db_path)
        self.key = key
        self.max_rows = max_rows
        self.missing_table_code = missing_table_code
        self.requests: list[dict] = []
        self._faults: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> PostgrestServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="postgrest-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self._db.close()

    def __enter__(self) -> PostgrestServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests with a transient error (503 PGRST002, or 520)."""
        with self._lock:
            self._faults.extend([(status, "PGRST002" if status == 503 else str(status))] * count)

    # ----- the query engine ---------------------------------------------------------------

    def _columns(self, table: str) -> list[str] | None:
        rows = self._db.execute(f"PRAGMA table_info({table})").fetchall() if _IDENTIFIER.match(table) else []
        return [row[1] for row in rows] or None

    def _tables(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")]

    def _missing_table(self, table: str) -> _Error:
        if self.missing_table_code == "42P01":
            return _pg_error(404, "42P01", f'relation "public.{table}" does not exist')
        similar = [name for name in self._tables() if name[:3] == table[:3]]
        hint = f"Perhaps you meant the table 'public.{similar[0]}'" if similar else None
        return _pg_error(404, "PGRST205", f"Could not find the table 'public.{table}' in the schema cache", hint=hint)

    def query(self, method: str, path: str, params: list[tuple[str, str]], headers) -> tuple[int, dict, bytes]:
        with self._lock:
            if self._faults:
                status, code = self._faults.pop(0)
                raise _pg_error(status, code, "Could not query the database for the schema cache. Retrying.")
        key = headers.get("apikey")
        authorization = headers.get("Authorization", "")
        if key != self.key or (authorization and authorization != f"Bearer {self.key}"):
            raise _Error(
                401,
                {"message": "Invalid API key", "hint": "Double check your Supabase `anon` or `service_role` API key."},
            )
        match = re.fullmatch(r"/rest/v1/([^/?]+)", path)
        if not match:
            raise _Error(404, None)
        table = match.group(1)
        with self._lock:
            columns = self._columns(table)
            if columns is None:
                raise self._missing_table(table)
            sql_select, where, args, order, offset, limit = self._compile(table, columns, params, headers)
            count_wanted = "count=exact" in headers.get("Prefer", "")
            total = (
                self._db.execute(f"SELECT COUNT(*) FROM {table}{where}", args).fetchone()[0] if count_wanted else None
            )
            effective = self.max_rows if limit is None else min(limit, self.max_rows)
            if count_wanted and offset > 0 and offset >= total:
                raise _pg_error(
                    416,
                    "PGRST103",
                    "Requested range not satisfiable",
                    details=f"An offset of {offset} was requested, but there are only {total} rows.",
                )
            cursor = self._db.execute(
                f"SELECT {sql_select} FROM {table}{where}{order} LIMIT ? OFFSET ?", [*args, effective, offset]
            )
            names = [description[0] for description in cursor.description]
            rows = [dict(zip(names, row)) for row in cursor.fetchall()]
        if rows:
            content_range = f"{offset}-{offset + len(rows) - 1}/{total if total is not None else '*'}"
        else:
            content_range = f"*/{total if total is not None else '*'}"
        partial = total is not None and len(rows) < total
        status = 206 if partial else 200
        body = b"" if method == "HEAD" else json.dumps(rows).encode("utf-8")
        return status, {"Content-Range": content_range}, body

    def _compile(self, table, columns, params, headers):
        known = set(columns)

        def column(name: str) -> str:
            if name not in known:
                raise _pg_error(400, "42703", f"column {table}.{name} does not exist")
            return f'"{name}"'

        select = "*"
        where: list[str] = []
        args: list = []
        order = ""
        offset = 0
        limit = None
        for name, value in params:
            if name == "select":
                parts = [part.strip() for part in value.split(",") if part.strip()]
                if parts and parts != ["*"]:
                    select = ", ".join(column(part.split("::")[0].split(":")[-1]) for part in parts)
            elif name == "order":
                terms = []
                for term in value.split(","):
                    pieces = term.split(".")
                    direction = "DESC" if "desc" in pieces[1:] else "ASC"
                    nulls = (
                        " NULLS FIRST"
                        if "nullsfirst" in pieces[1:]
                        else (" NULLS LAST" if "nullslast" in pieces[1:] else "")
                    )
                    terms.append(f"{column(pieces[0])} {direction}{nulls}")
                order = " ORDER BY " + ", ".join(terms)
            elif name == "offset":
                offset = int(value)
            elif name == "limit":
                limit = int(value)
            elif name not in _RESERVED:
                operator, _, operand = value.partition(".")
                negate = operator == "not"
                if negate:
                    operator, _, operand = operand.partition(".")
                target = column(name)
                if operator in _OPERATORS:
                    if operator in ("like", "ilike"):
                        operand = operand.replace("*", "%")
                    clause = f"{target} {_OPERATORS[operator]} ?"
                    args.append(operand)
                elif operator == "in":
                    items = [item.strip().strip('"') for item in operand.strip("()").split(",")]
                    clause = f"{target} IN ({','.join('?' * len(items))})"
                    args.extend(items)
                elif operator == "is":
                    clause = f"{target} IS {'NULL' if operand == 'null' else ('1' if operand == 'true' else '0')}"
                else:
                    raise _pg_error(400, "PGRST100", f'"failed to parse filter ({value})" (line 1, column 1)')
                where.append(f"NOT ({clause})" if negate else clause)
        range_header = headers.get("Range")
        if range_header and re.fullmatch(r"\d+-\d*", range_header):
            first, _, last = range_header.partition("-")
            offset = int(first)
            if last:
                limit = int(last) - offset + 1
        where_sql = (" WHERE " + " AND ".join(where)) if where else ""
        return select, where_sql, args, order, offset, limit


class _Handler(BaseHTTPRequestHandler):
    fake: PostgrestServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: with Nagle on, the body waits for the client's
    # delayed ACK (40 ms a response on loopback).
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        params = parse_qsl(parts.query, keep_blank_values=True)
        # Header names are case-insensitive: record them lower-cased.
        self.fake.requests.append(
            {
                "method": method,
                "path": parts.path,
                "params": params,
                "headers": {name.lower(): value for name, value in self.headers.items()},
            }
        )
        try:
            status, headers, body = self.fake.query(method, parts.path, params, self.headers)
        except _Error as error:
            status, headers = error.status, error.headers
            body = json.dumps(error.body).encode() if error.body is not None and method != "HEAD" else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_HEAD(self) -> None:
        self._answer("HEAD")


def make_turns_table(db_path, conversations: int, *, table: str = "memory_turns", seed: int = 0) -> int:
    """A `memory_turns` table of several thousand turns, rows inserted in shuffled order (so
    only an explicit order returns them grouped). Returns the number of rows."""
    import random

    rng = random.Random(seed)
    words = [
        "deploy",
        "cache",
        "index",
        "query",
        "latency",
        "worker",
        "queue",
        "retry",
        "schema",
        "lesson",
        "class",
        "student",
        "plan",
        "draft",
        "review",
        "test",
        "branch",
        "merge",
        "budget",
        "report",
        "chapter",
    ]
    rows = []
    for number in range(conversations):
        conversation_id = f"conv-{number:05d}"
        for turn in range(rng.randint(2, 12)):
            role = "user" if turn % 2 == 0 else "assistant"
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 30)))
            rows.append(
                (
                    conversation_id,
                    turn,
                    role,
                    f"{text} (turn {turn})",
                    f"2026-05-{1 + number % 28:02d}T10:{turn:02d}:00+00:00",
                )
            )
    rng.shuffle(rows)
    db = sqlite3.connect(str(db_path))
    db.execute(
        f"CREATE TABLE {table}(id INTEGER PRIMARY KEY, conversation_id TEXT, turn_index INTEGER, "
        "role TEXT, content TEXT, created_at TEXT)"
    )
    db.executemany(
        f"INSERT INTO {table}(conversation_id, turn_index, role, content, created_at) VALUES(?,?,?,?,?)", rows
    )
    db.commit()
    db.close()
    return len(rows)
