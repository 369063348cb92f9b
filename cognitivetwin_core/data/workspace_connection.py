"""The workspace's connection and locking: one SQLite connection per thread, transactions
that take the write lock (saying who holds it when they must wait), the schema's migrations,
and damaged or unwritable databases turned into one sentence. `Workspace` builds on it."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from cognitivetwin_core.atomic_files import write_text_atomically
from cognitivetwin_core.data.workspace_schema import MIGRATIONS, SCHEMA_VERSION
from cognitivetwin_core.errors import CognitiveTwinError

DB_NAME = "workspace.sqlite3"
_WRITER_NOTE = ".writer.json"  # who holds the write lock during a long write (see lock_holder)
_BUSY_TIMEOUT_S = 120.0  # a writer waits this long for another's write lock
BATCH = 256  # conversations per batch, written or read


def now_text() -> str:
    """Now, in UTC, as the workspace's records store times."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def database_error(db_path: Path, exc: sqlite3.DatabaseError) -> CognitiveTwinError:
    return CognitiveTwinError(
        f"The workspace database {db_path} cannot be read ({exc}): it is damaged or not a workspace; "
        "choose another folder or restore it from a backup."
    )


def _is_damage(exc: BaseException) -> bool:
    """SQLite found damaged pages or no database ("database disk image is malformed", "file is
    not a database"): its plain DatabaseError, not a lock, a constraint or a disk error."""
    return type(exc) is sqlite3.DatabaseError


def _write_problem(exc: BaseException) -> str | None:
    """What the disk said, in words, when SQLite could not write (None: not a disk problem)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    text = str(exc).lower()
    if "full" in text:
        return "the disk is full; free some space and try again"
    if "readonly" in text or "read-only" in text:
        return "it is read-only; make it writable or choose another workspace"
    if "disk i/o" in text:
        return "the disk reported an input/output error; check the disk and try again"
    return None


def _connect(db_path: Path) -> sqlite3.Connection:
    try:
        # A long import holds the write lock; other writers wait this long for it.
        connection = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_S)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise CognitiveTwinError(
                f"The workspace database {db_path} is locked by another program: try again when it has finished."
            ) from exc
        raise database_error(db_path, exc) from exc
    except sqlite3.DatabaseError as exc:
        raise database_error(db_path, exc) from exc
    return connection


class WorkspaceConnection:
    """The workspace's folder and database, safe to share between threads: each thread gets its
    own SQLite connection, and with write-ahead logging readers (the app's Data tab) are never
    blocked by an import running on a worker thread; they see what was committed."""

    def __init__(self, path: Path):
        self.path = path
        self.db_path = path / DB_NAME
        self.adapters_dir = path / "adapters"
        self.runs_dir = path / "runs"
        self.cache_dir = path / "cache"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        self.on_wait: Callable[[str], None] | None = None  # see open()

    @property
    def _db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self._closed:
                raise CognitiveTwinError(f"The workspace {self.path} is closed: open it again.")
            connection = _connect(self.db_path)
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _no_wait(self, what: str):
        """Take the write lock without waiting for another process; refuse in a sentence if it is held."""
        db = self._db
        db.execute("PRAGMA busy_timeout=0")
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise CognitiveTwinError(
                f"{what}, but {self.lock_holder()} is writing to it: try again when that has finished."
            ) from None
        finally:
            db.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")

    def lock_holder(self) -> str:
        """Who is writing to this workspace, in words, from the note a long write leaves."""
        try:
            note = json.loads((self.path / _WRITER_NOTE).read_text(encoding="utf-8"))
            pid = int(note["pid"])
            os.kill(pid, 0)
        except (OSError, ValueError, KeyError, TypeError):
            return "another program"
        return f"process {pid} ({note.get('what') or 'a write'}, since {note.get('since') or '?'})"

    @contextmanager
    def _writer_note(self, what: str):
        """Leave a note naming this process while a long write holds the lock (read by `lock_holder`)."""
        note = self.path / _WRITER_NOTE
        try:
            write_text_atomically(note, json.dumps({"pid": os.getpid(), "what": what, "since": now_text()}))
        except OSError:
            pass  # only a courtesy to other processes
        try:
            yield
        finally:
            try:
                if json.loads(note.read_text(encoding="utf-8")).get("pid") == os.getpid():
                    note.unlink()
            except (OSError, ValueError, AttributeError):
                pass

    def _migrate(self) -> None:
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise CognitiveTwinError(
                    f"The workspace {self.path} was written by a newer CognitiveTwin (schema "
                    f"{current}, this one knows {SCHEMA_VERSION}): update the app to open it."
                )
            for script in MIGRATIONS[current:]:
                if callable(script):
                    script(db)
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        """Close every thread's connection; the workspace cannot be used afterwards."""
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    @contextmanager
    def _transaction(self):
        db = self._db
        try:
            self._begin(db)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if db.execute("PRAGMA busy_timeout").fetchone()[0] == 0:
                raise  # _no_wait says it in its own words
            raise CognitiveTwinError(
                f"The workspace {self.path} is busy: {self.lock_holder()} has been writing to it for over "
                f"{_BUSY_TIMEOUT_S:.0f} s; try again when that has finished."
            ) from None
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.DatabaseError:
                pass  # a failed COMMIT may have rolled back already
            if _is_damage(exc):
                raise database_error(self.db_path, exc) from exc
            problem = _write_problem(exc)
            if problem is None:
                raise
            raise CognitiveTwinError(
                f"Could not write to the workspace {self.path}: {problem}; nothing of this change was kept."
            ) from exc

    def _begin(self, db: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE; if another process holds the write lock, tell `on_wait` who before waiting."""
        timeout = db.execute("PRAGMA busy_timeout").fetchone()[0] if self.on_wait is not None else 0
        if timeout:
            db.execute("PRAGMA busy_timeout=0")
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                self.on_wait(self.lock_holder())
            finally:
                db.execute(f"PRAGMA busy_timeout={timeout}")
        db.execute("BEGIN IMMEDIATE")

    def _query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._reading():
            return self._db.execute(sql, tuple(params)).fetchall()

    @contextmanager
    def _reading(self):
        """Damaged pages met while reading are one sentence naming the database, not a traceback."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            raise database_error(self.db_path, exc) from exc
