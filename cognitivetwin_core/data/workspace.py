"""The workspace: a folder with an SQLite database of conversations, their annotations,
imports, Phase 1 jobs, Phase 2 runs and adapters, plus folders for adapters, runs and caches.

Everything downstream reads conversations from here. It is built for 100k+ messages:
imports are streamed and written with `executemany` in batches inside one transaction
(all or nothing), listing pages with LIMIT/OFFSET over indexed columns, and reading
streams conversations in keyset-paged batches, so nothing loads the whole corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.annotation.patterns import LABELER_VERSION, PATTERN_INDEX, names_from_mask, pattern_mask_for
from cognitivetwin_core.annotation.pool import AnnotationPipeline
from cognitivetwin_core.annotation.text_features import compute_text_features
from cognitivetwin_core.annotation.trajectory import ALGORITHM_VERSION, TurnTrajectory, annotate
from cognitivetwin_core.atomic_files import write_text_atomically
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.conversation_identity import content_hash
from cognitivetwin_core.data.twin_speaker import DEFAULT_TWIN_SPEAKER, ROLE_SPEAKERS, SpeakerCount
from cognitivetwin_core.data.twin_speaker import SETTING_KEY as TWIN_SPEAKER_KEY
from cognitivetwin_core.data.workspace_schema import MIGRATIONS, SCHEMA_VERSION
from cognitivetwin_core.errors import CognitiveTwinError, InputError

DB_NAME = "workspace.sqlite3"
_WRITER_NOTE = ".writer.json"  # who holds the write lock during a long write (see lock_holder)
_BUSY_TIMEOUT_S = 120.0  # a writer waits this long for another's write lock
ANNOTATION_VERSION = f"{ALGORITHM_VERSION}.{LABELER_VERSION}"
_BATCH = 256
_PREVIEW_CHARS = 160


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    source: str
    title: str | None
    message_count: int
    first_at: str | None
    preview: str
    phases: tuple[int, ...]
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class MessageAnnotation:
    turn_index: int
    role: str
    coordinates: tuple[float, float, float, float, float]
    phase_id: int
    homogeneity: float
    patterns: tuple[str, ...]

    @property
    def trajectory(self) -> TurnTrajectory:
        return TurnTrajectory(self.coordinates, self.phase_id, self.homogeneity, self.turn_index)


@dataclass
class AddResult:
    """What one `add_conversations` call stored."""

    import_id: int
    conversations_added: int = 0
    messages_added: int = 0
    duplicates: int = 0
    ids: list[str] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _preview(conversation: Conversation) -> str:
    for message in conversation.messages:
        if message.role == "user" and message.content.strip():
            text = message.content
            break
    else:
        text = conversation.messages[0].content if conversation.messages else ""
    return " ".join(text[: _PREVIEW_CHARS * 2].split())[:_PREVIEW_CHARS]


def annotation_rows(conversation: Conversation) -> tuple[list[tuple], int, int]:
    """Per message (depth, sibling_order, homogeneity, temporal, complexity, phase_id,
    pattern_mask), plus the conversation's phase and pattern masks."""
    messages = conversation.messages
    # Each message's words are read once, for both the annotator and the labeler.
    features = [compute_text_features(message.content) for message in messages]
    rows = []
    phase_bits = 0
    pattern_bits = 0
    for message, turn, message_features in zip(messages, annotate(conversation, features=features), features):
        mask = pattern_mask_for(message, message_features)
        phase_bits |= 1 << turn.phase_id if 0 <= turn.phase_id < 6 else 0
        pattern_bits |= mask
        rows.append((*turn.coordinates, turn.phase_id, mask))
    return rows, phase_bits, pattern_bits


def annotate_conversations(conversations: list[Conversation]) -> list[tuple[list[tuple], int, int]]:
    """`annotation_rows` of each conversation (a batch, as the annotation workers get it)."""
    return [annotation_rows(conversation) for conversation in conversations]


def _database_error(db_path: Path, exc: sqlite3.DatabaseError) -> CognitiveTwinError:
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
        raise _database_error(db_path, exc) from exc
    except sqlite3.DatabaseError as exc:
        raise _database_error(db_path, exc) from exc
    return connection


class Workspace:
    """One workspace folder, safe to share between threads: each thread gets its own SQLite
    connection, and with write-ahead logging readers (the app's Data tab) are never blocked
    by an import running on a worker thread; they see what was committed."""

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

    # ----- opening ------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        read_only: bool = False,
        on_wait: Callable[[str], None] | None = None,
    ) -> Workspace:
        """Open (creating if needed) the workspace folder; None means the user's default one.

        `read_only` (listing, showing, exporting): the workspace must exist, and opening takes
        no write lock while the schema is current, so readers never wait for an import; a
        needed update done while another process writes is refused in a sentence saying so.
        `on_wait(who)` is called when a write has to wait for another process's (to say so).
        """
        if path is None:
            from cognitivetwin_core.paths import default_workspace_dir

            path = default_workspace_dir()
        path = Path(path).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise InputError(f"The workspace {path} is a file, not a folder: choose a folder.")
        if read_only:
            if not (path / DB_NAME).is_file():
                raise InputError(
                    f"There is no workspace at {path}: check the --workspace folder, or import "
                    "conversations into it first with `cognitivetwin data import`."
                )
            workspace = cls(path)
            workspace._prepare_for_reading()
            return workspace
        try:
            for folder in (path, path / "adapters", path / "runs", path / "cache"):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CognitiveTwinError(f"Cannot create the workspace folder {path}: {exc.strerror}.") from exc
        workspace = cls(path)
        workspace.on_wait = on_wait
        workspace._migrate()
        workspace.refresh_annotations()
        return workspace

    def _prepare_for_reading(self) -> None:
        """Update the schema only if needed; refresh stale annotations only if nobody is writing."""
        try:
            row = self._db.execute(
                "SELECT value FROM meta WHERE key='schema_version'"
                if self._db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
                else "SELECT NULL"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise _database_error(self.db_path, exc) from exc
        current = int(row[0]) if row and row[0] is not None else 0
        if current != SCHEMA_VERSION:
            with self._no_wait(f"The workspace {self.path} needs a one-time update before it can be read"):
                self._migrate()
        stale = self._query(
            "SELECT 1 FROM conversations WHERE annotation_version IS NOT ? LIMIT 1", (ANNOTATION_VERSION,)
        )
        if stale:
            try:
                with self._no_wait(""):
                    self.refresh_annotations()
            except CognitiveTwinError:  # someone is writing: read the annotations as they are
                pass

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
            write_text_atomically(note, json.dumps({"pid": os.getpid(), "what": what, "since": _now()}))
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

    def __enter__(self) -> Workspace:
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
                raise _database_error(self.db_path, exc) from exc
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
            raise _database_error(self.db_path, exc) from exc

    # ----- writing conversations ----------------------------------------------------------

    def add_conversations(
        self,
        conversations: Iterable[Conversation],
        *,
        source_label: str = "api",
        importer: str | None = None,
        location: str | None = None,
        report: dict | Callable[[], dict] | None = None,
        progress: Callable[[int, int], None] | None = None,
        before_commit: Callable[[sqlite3.Connection], None] | None = None,
    ) -> AddResult:
        """Store conversations (annotated) in one transaction: all of them or, if the iterable
        raises (a strict import aborting, a cancel), none. Conversations already stored (the
        same identity: `content_hash`) are skipped as duplicates. `report` (or a callable
        returning it once the iterable is exhausted) is saved with the import record.
        `progress(conversations, messages)` is called after each batch. `before_commit(db)`
        runs last inside the transaction (what it raises keeps nothing of the import)."""
        with self._writer_note(f"an import of {location or source_label}"), self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO imports(source_label, importer, location, started_at) VALUES(?,?,?,?)",
                (source_label, importer, location, _now()),
            )
            result = AddResult(import_id=cursor.lastrowid)
            next_pk = db.execute("SELECT COALESCE(MAX(pk), 0) + 1 FROM conversations").fetchone()[0]
            seen_hashes: set[str] = set()
            pending_ids: set[str] = set()  # ids given to batches not yet written
            batch: list[Conversation] = []

            def write(done) -> None:
                prepared, annotations = done
                self._write_batch(db, prepared, annotations, result)
                pending_ids.difference_update(row[1] for row in prepared)
                if progress is not None:
                    progress(result.conversations_added + result.duplicates, result.messages_added)

            def submit() -> None:
                nonlocal next_pk
                prepared, next_pk = self._prepare_batch(db, batch, next_pk, result, seen_hashes, pending_ids)
                batch.clear()
                for done in pipeline.submit(prepared, [row[3] for row in prepared]):
                    write(done)

            with AnnotationPipeline(annotate_conversations) as pipeline:
                for conversation in conversations:
                    batch.append(conversation)
                    if len(batch) >= _BATCH:
                        submit()
                if batch:
                    submit()
                for done in pipeline.drain():
                    write(done)
            details = report() if callable(report) else (report or {})
            db.execute(
                "UPDATE imports SET finished_at=?, conversations=?, messages=?, duplicates=?, "
                "rejected=?, report=? WHERE id=?",
                (
                    _now(),
                    result.conversations_added,
                    result.messages_added,
                    result.duplicates,
                    int(details.get("rejected_count", len(details.get("rejected", [])))),
                    json.dumps(details, ensure_ascii=False, default=str),
                    result.import_id,
                ),
            )
            if location is not None:  # the file is imported again with today's identity
                db.execute(
                    "UPDATE imports SET duplicates_by_text=0 WHERE location=? AND id<?", (location, result.import_id)
                )
            if before_commit is not None:
                before_commit(db)
        return result

    def _prepare_batch(
        self,
        db,
        batch: list[Conversation],
        next_pk: int,
        result: AddResult,
        seen_hashes: set[str],
        pending_ids: set[str],
    ) -> tuple[list[tuple[int, str, str, Conversation]], int]:
        """(pk, id, content hash, conversation) for each conversation of the batch to store,
        in order, and the next free pk; duplicates are counted and left out."""
        hashed = [(content_hash(conversation), conversation) for conversation in batch if conversation.messages]
        hashes = [digest for digest, _ in hashed]
        placeholders = ",".join("?" * len(hashes))
        stored = (
            {
                row[0]
                for row in db.execute(
                    f"SELECT content_hash FROM conversations WHERE content_hash IN ({placeholders})", hashes
                )
            }
            if hashes
            else set()
        )
        wanted_ids = [conversation.id for _, conversation in hashed]
        taken_ids = (
            {
                row[0]
                for row in db.execute(
                    f"SELECT id FROM conversations WHERE id IN ({','.join('?' * len(wanted_ids))})", wanted_ids
                )
            }
            if wanted_ids
            else set()
        )
        taken_ids |= pending_ids
        prepared = []
        for digest, conversation in hashed:
            if digest in stored or digest in seen_hashes:
                result.duplicates += 1
                continue
            seen_hashes.add(digest)
            conversation_id = self._free_id(db, conversation.id, taken_ids)
            taken_ids.add(conversation_id)
            pending_ids.add(conversation_id)
            prepared.append((next_pk, conversation_id, digest, conversation))
            next_pk += 1
        return prepared, next_pk

    def _write_batch(
        self, db, prepared: list[tuple[int, str, str, Conversation]], annotations: list, result: AddResult
    ) -> None:
        conversation_rows = []
        message_rows = []
        append_message = message_rows.append
        import_id = result.import_id
        for (pk, conversation_id, digest, conversation), (rows, phase_bits, pattern_bits) in zip(prepared, annotations):
            messages = conversation.messages
            conversation_rows.append(
                (
                    pk,
                    conversation_id,
                    conversation.source,
                    conversation.title,
                    digest,
                    len(messages),
                    _iso(messages[0].created_at),
                    _preview(conversation),
                    import_id,
                    phase_bits,
                    pattern_bits,
                    ANNOTATION_VERSION,
                    conversation.source_id,
                )
            )
            for turn_index, (message, annotation) in enumerate(zip(messages, rows)):
                created_at = message.created_at
                append_message(
                    (
                        pk,
                        turn_index,
                        message.role,
                        message.content,
                        created_at.isoformat() if created_at is not None else None,
                        json.dumps(message.patterns) if message.patterns is not None else None,
                        json.dumps(message.trajectory) if message.trajectory is not None else None,
                        *annotation,
                        message.speaker,
                    )
                )
            result.conversations_added += 1
            result.messages_added += len(messages)
            result.ids.append(conversation_id)
        db.executemany(
            "INSERT INTO conversations(pk, id, source, title, content_hash, message_count, first_at, "
            "preview, import_id, phase_mask, pattern_mask, annotation_version, source_id) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            conversation_rows,
        )
        db.executemany(
            "INSERT INTO messages(conversation_pk, turn_index, role, content, created_at, explicit_patterns, "
            "given_trajectory, depth, sibling_order, homogeneity, temporal, complexity, phase_id, pattern_mask, "
            "speaker) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            message_rows,
        )

    @staticmethod
    def _free_id(db, wanted: str, taken: set[str]) -> str:
        """The conversation's own id, or `id~2`, `id~3`... when different content already uses it."""
        if wanted not in taken:
            return wanted
        suffix = 2
        while True:
            candidate = f"{wanted}~{suffix}"
            if (
                candidate not in taken
                and not db.execute("SELECT 1 FROM conversations WHERE id=?", (candidate,)).fetchone()
            ):
                return candidate
            suffix += 1

    def delete_conversations(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        with self._transaction() as db:
            deleted = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                deleted += db.execute(
                    f"DELETE FROM conversations WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ).rowcount
        return deleted

    # ----- annotations --------------------------------------------------------------------

    def refresh_annotations(
        self, *, recompute_given: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Recompute stored annotations whose algorithm version differs from this code's
        (or all of them, ignoring trajectories given by imported files, with `recompute_given`).
        Returns how many conversations were annotated."""
        if recompute_given:
            with self._transaction() as db:
                db.execute("UPDATE messages SET given_trajectory=NULL WHERE given_trajectory IS NOT NULL")
                db.execute("UPDATE conversations SET annotation_version=NULL")
        stale = self._query(
            "SELECT COUNT(*) FROM conversations WHERE annotation_version IS NOT ?", (ANNOTATION_VERSION,)
        )[0][0]
        done = 0
        while done < stale:
            with self._transaction() as db:
                pks = [
                    row[0]
                    for row in db.execute(
                        "SELECT pk FROM conversations WHERE annotation_version IS NOT ? ORDER BY pk LIMIT ?",
                        (ANNOTATION_VERSION, _BATCH),
                    )
                ]
                if not pks:
                    break
                for pk, conversation in self._load(db, pks):
                    rows, phase_bits, pattern_bits = annotation_rows(conversation)
                    db.executemany(
                        "UPDATE messages SET depth=?, sibling_order=?, homogeneity=?, temporal=?, complexity=?, "
                        "phase_id=?, pattern_mask=? WHERE conversation_pk=? AND turn_index=?",
                        [(*row, pk, index) for index, row in enumerate(rows)],
                    )
                    db.execute(
                        "UPDATE conversations SET phase_mask=?, pattern_mask=?, annotation_version=? WHERE pk=?",
                        (phase_bits, pattern_bits, ANNOTATION_VERSION, pk),
                    )
                done += len(pks)
            if progress is not None:
                progress(done, stale)
        return done

    def annotations(self, conversation_id: str) -> list[MessageAnnotation]:
        """Trajectory and patterns of every message of the conversation, in order."""
        rows = self._query(
            "SELECT m.turn_index, m.role, m.depth, m.sibling_order, m.homogeneity, m.temporal, m.complexity, "
            "m.phase_id, m.pattern_mask FROM messages m JOIN conversations c ON c.pk = m.conversation_pk "
            "WHERE c.id = ? ORDER BY m.turn_index",
            (conversation_id,),
        )
        if not rows:
            self._require(conversation_id)
        return [
            MessageAnnotation(
                turn_index=row[0],
                role=row[1],
                coordinates=(row[2], row[3], row[4], row[5], row[6]),
                phase_id=row[7],
                homogeneity=row[4],
                patterns=tuple(names_from_mask(row[8])),
            )
            for row in rows
        ]

    # ----- reading conversations ----------------------------------------------------------

    @staticmethod
    def _filters(
        source=None, search=None, min_messages=None, max_messages=None, phase=None, pattern=None, ids=None
    ) -> tuple[str, list]:
        clauses: list[str] = []
        params: list = []
        if source:
            clauses.append("c.source = ?")
            params.append(source)
        if min_messages is not None:
            clauses.append("c.message_count >= ?")
            params.append(int(min_messages))
        if max_messages is not None:
            clauses.append("c.message_count <= ?")
            params.append(int(max_messages))
        if phase is not None:
            clauses.append("(c.phase_mask & ?) != 0")
            params.append(1 << int(phase))
        if pattern:
            if pattern not in PATTERN_INDEX:
                raise InputError(f"Unknown pattern {pattern!r}: use one of {', '.join(PATTERN_INDEX)}.")
            clauses.append("(c.pattern_mask & ?) != 0")
            params.append(1 << PATTERN_INDEX[pattern])
        if search:
            like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append(
                "(c.id LIKE ? ESCAPE '\\' OR c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m "
                "WHERE m.conversation_pk = c.pk AND m.content LIKE ? ESCAPE '\\'))"
            )
            params += [like, like, like]
        if ids is not None:
            ids = list(ids)
            clauses.append(f"c.id IN ({','.join('?' * len(ids))})" if ids else "0")
            params += ids
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def count_conversations(self, **filters) -> int:
        where, params = self._filters(**filters)
        return self._query(f"SELECT COUNT(*) FROM conversations c{where}", params)[0][0]

    def count_messages(self) -> int:
        return self._query("SELECT COUNT(*) FROM messages")[0][0]

    def list_conversations(
        self,
        offset: int = 0,
        limit: int = 100,
        *,
        source: str | None = None,
        search: str | None = None,
        min_messages: int | None = None,
        max_messages: int | None = None,
        phase: int | None = None,
        pattern: str | None = None,
    ) -> list[ConversationSummary]:
        """One page of conversation summaries in import order."""
        where, params = self._filters(source, search, min_messages, max_messages, phase, pattern)
        rows = self._query(
            "SELECT c.id, c.source, c.title, c.message_count, c.first_at, c.preview, c.phase_mask, c.pattern_mask "
            f"FROM conversations c{where} ORDER BY c.pk LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
        return [
            ConversationSummary(
                id=row[0],
                source=row[1],
                title=row[2],
                message_count=row[3],
                first_at=row[4],
                preview=row[5] or "",
                phases=tuple(phase_id for phase_id in range(6) if row[6] >> phase_id & 1),
                patterns=tuple(names_from_mask(row[7])),
            )
            for row in rows
        ]

    def _require(self, conversation_id: str) -> int:
        row = self._query("SELECT pk FROM conversations WHERE id = ?", (conversation_id,))
        if not row:
            raise InputError(f"No conversation {conversation_id!r} in the workspace {self.path}.")
        return row[0][0]

    def get_conversation(self, conversation_id: str) -> Conversation:
        pk = self._require(conversation_id)
        with self._reading():
            return self._load(self._db, [pk])[0][1]

    @staticmethod
    def _load(db, pks: list[int]) -> list[tuple[int, Conversation]]:
        placeholders = ",".join("?" * len(pks))
        conversations: dict[int, Conversation] = {}
        for pk, conversation_id, source, title, source_id in db.execute(
            f"SELECT pk, id, source, title, source_id FROM conversations WHERE pk IN ({placeholders}) ORDER BY pk",
            pks,
        ):
            conversations[pk] = Conversation(id=conversation_id, source=source, title=title, source_id=source_id)
        for pk, role, content, created_at, explicit, given, speaker in db.execute(
            "SELECT conversation_pk, role, content, created_at, explicit_patterns, given_trajectory, speaker "
            "FROM messages "
            f"WHERE conversation_pk IN ({placeholders}) ORDER BY conversation_pk, turn_index",
            pks,
        ):
            conversations[pk].messages.append(
                Message(
                    role=role,
                    content=content,
                    created_at=_parse_time(created_at),
                    patterns=json.loads(explicit) if explicit is not None else None,
                    trajectory=json.loads(given) if given is not None else None,
                    speaker=speaker,
                )
            )
        return list(conversations.items())

    def iter_conversations(self, ids: Iterable[str] | None = None, **filters) -> Iterator[Conversation]:
        """Stream conversations in import order, a batch at a time (keyset paging on pk)."""
        where, params = self._filters(ids=ids, **filters)
        last_pk = 0
        joiner = " AND " if where else " WHERE "
        while True:
            with self._reading():
                pks = [
                    row[0]
                    for row in self._db.execute(
                        f"SELECT c.pk FROM conversations c{where}{joiner}c.pk > ? ORDER BY c.pk LIMIT ?",
                        [*params, last_pk, _BATCH],
                    )
                ]
                if not pks:
                    return
                batch = self._load(self._db, pks)
            last_pk = pks[-1]
            for _, conversation in batch:
                yield conversation

    def data_hash(self, ids: Iterable[str] | None = None) -> str:
        """Content hash of the selected conversations (all by default), independent of order."""
        where, params = self._filters(ids=ids)
        digest = hashlib.sha256()
        with self._reading():
            for (stored_hash,) in self._db.execute(
                f"SELECT c.content_hash FROM conversations c{where} ORDER BY c.content_hash", params
            ):
                digest.update(stored_hash.encode("ascii"))
        return digest.hexdigest()

    def sources(self) -> list[str]:
        return [row[0] for row in self._query("SELECT DISTINCT source FROM conversations ORDER BY source")]

    def stats(self) -> dict:
        conversations, messages_in_conversations = self._query(
            "SELECT COUNT(*), COALESCE(SUM(message_count), 0) FROM conversations"
        )[0]
        by_source = dict(self._query("SELECT source, COUNT(*) FROM conversations GROUP BY source ORDER BY source"))
        by_role = dict(self._query("SELECT role, COUNT(*) FROM messages GROUP BY role ORDER BY role"))
        by_phase = dict(self._query("SELECT phase_id, COUNT(*) FROM messages GROUP BY phase_id ORDER BY phase_id"))
        bits = ", ".join(f"SUM((pattern_mask >> {index}) & 1)" for index in range(len(PATTERN_INDEX)))
        pattern_counts = self._query(f"SELECT {bits} FROM messages")[0]
        characters = self._query("SELECT COALESCE(SUM(LENGTH(content)), 0) FROM messages")[0][0]
        imports = self._query(
            "SELECT id, source_label, importer, location, finished_at, conversations, messages, duplicates, rejected "
            "FROM imports ORDER BY id"
        )
        return {
            "path": str(self.path),
            "conversations": conversations,
            "messages": messages_in_conversations,
            "characters": characters,
            "mean_messages_per_conversation": (messages_in_conversations / conversations) if conversations else 0.0,
            "by_source": by_source,
            "by_role": by_role,
            "by_phase": {int(key): value for key, value in by_phase.items() if key is not None},
            "by_pattern": {name: int(pattern_counts[index] or 0) for name, index in PATTERN_INDEX.items()},
            "imports": [
                dict(
                    zip(
                        (
                            "id",
                            "source_label",
                            "importer",
                            "location",
                            "finished_at",
                            "conversations",
                            "messages",
                            "duplicates",
                            "rejected",
                        ),
                        row,
                    )
                )
                for row in imports
            ],
            "annotation_version": ANNOTATION_VERSION,
            "imports_to_repeat": self.imports_to_repeat(),
        }

    def imports_to_repeat(self) -> list[dict]:
        """Imports that counted duplicates by their texts alone, before conversations were told
        apart by speaker and time: their files may hold conversations that were left out. Each
        with `advice`, the sentence to show (importing the file again adds only what is missing)."""
        rows = self._query(
            "SELECT id, importer, location, finished_at, duplicates_by_text FROM imports "
            "WHERE duplicates_by_text > 0 ORDER BY id"
        )
        return [
            {
                "id": import_id,
                "importer": importer,
                "location": location,
                "finished_at": finished_at,
                "duplicates": count,
                "advice": (
                    f"The import of {location} on {(finished_at or '?')[:10]} skipped {count} "
                    f"conversation{'s' if count != 1 else ''} whose texts were already stored, without "
                    "comparing who spoke and when; some may have been other conversations. Import "
                    f"{location} again to add them (nothing already stored is added twice)."
                ),
            }
            for import_id, importer, location, finished_at, count in rows
        ]

    def imports(self) -> list[dict]:
        """Every import with its stored report."""
        rows = self._query(
            "SELECT id, source_label, importer, location, started_at, finished_at, conversations, messages, "
            "duplicates, rejected, report FROM imports ORDER BY id"
        )
        keys = (
            "id",
            "source_label",
            "importer",
            "location",
            "started_at",
            "finished_at",
            "conversations",
            "messages",
            "duplicates",
            "rejected",
        )
        return [{**dict(zip(keys, row[:-1])), "report": json.loads(row[-1]) if row[-1] else {}} for row in rows]

    # ----- settings and the twin's speaker (docs/twin-speaker.md) ---------------------------

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self._query("SELECT value FROM settings WHERE key=?", (key,))
        return row[0][0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self._transaction() as db:
            self.write_setting(db, key, value)

    @staticmethod
    def write_setting(db: sqlite3.Connection, key: str, value: str) -> None:
        """Set a setting inside a transaction already open (see `add_conversations`' `before_commit`)."""
        db.execute(
            "INSERT INTO settings(key, value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def speakers(self) -> list[SpeakerCount]:
        """Every participant (by name) and role (for messages without a name) that can be the
        person, with their message and conversation counts, most messages first."""
        rows = self._query(
            "SELECT COALESCE(speaker, role), speaker IS NOT NULL, COUNT(*), COUNT(DISTINCT conversation_pk) "
            "FROM messages WHERE speaker IS NOT NULL OR role IN ('user', 'assistant') "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1"
        )
        return [
            SpeakerCount(name, bool(named), messages, conversations) for name, named, messages, conversations in rows
        ]

    def twin_speaker(self) -> str:
        """Whose messages the twin learns: 'assistant' (default), 'user' or a participant's name."""
        return self.get_setting(TWIN_SPEAKER_KEY) or DEFAULT_TWIN_SPEAKER

    def resolve_speaker(self, speaker: str) -> str:
        """A role ('assistant', 'user') or a participant named in the workspace (case aside), as
        stored; an unknown one raises InputError naming the choices."""
        speaker = (speaker or "").strip()
        if speaker in ROLE_SPEAKERS:
            return speaker
        names = [item.name for item in self.speakers() if item.named]
        if speaker in names:
            return speaker
        folded = [name for name in names if name.casefold() == speaker.casefold()]
        if len(folded) != 1:
            choices = ", ".join([*ROLE_SPEAKERS, *names[:20]])
            raise InputError(
                f"{speaker!r} is not a speaker of the workspace {self.path}: choose one of {choices} "
                "(`cognitivetwin data speakers` lists them)."
            )
        return folded[0]

    def set_twin_speaker(self, speaker: str) -> str:
        """Set the person: a role ('assistant', 'user') or a participant named in the workspace."""
        speaker = self.resolve_speaker(speaker)
        self.set_setting(TWIN_SPEAKER_KEY, speaker)
        return speaker

    # ----- generic records owned by other modules -----------------------------------------

    def _upsert_record(self, table: str, key_column: str, key: str, fields: dict) -> None:
        with self._transaction() as db:
            row = db.execute(f"SELECT fields FROM {table} WHERE {key_column}=?", (key,)).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **fields}
            payload = json.dumps(merged, ensure_ascii=False, default=str)
            now = _now()
            if row:
                db.execute(f"UPDATE {table} SET fields=?, updated_at=? WHERE {key_column}=?", (payload, now, key))
            else:
                db.execute(
                    f"INSERT INTO {table}({key_column}, fields, created_at, updated_at) VALUES(?,?,?,?)",
                    (key, payload, now, now),
                )

    def _records(self, table: str, key_column: str, key: str | None = None) -> list[dict]:
        where = f" WHERE {key_column}=?" if key is not None else ""
        rows = self._query(
            f"SELECT {key_column}, fields, created_at, updated_at FROM {table}{where} ORDER BY created_at, rowid",
            (key,) if key is not None else (),
        )
        return [
            {**json.loads(fields), key_column: record_key, "created_at": created, "updated_at": updated}
            for record_key, fields, created, updated in rows
        ]

    def upsert_phase1_job(self, job_id: str, fields: dict) -> None:
        """Create or update a Phase 1 job record; `fields` are merged into the stored ones."""
        self._upsert_record("phase1_jobs", "job_id", job_id, fields)

    def phase1_jobs(self) -> list[dict]:
        return self._records("phase1_jobs", "job_id")

    def get_phase1_job(self, job_id: str) -> dict | None:
        records = self._records("phase1_jobs", "job_id", job_id)
        return records[0] if records else None

    def delete_phase1_job(self, job_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM phase1_jobs WHERE job_id=?", (job_id,))

    def upsert_phase2_run(self, run_id: str, fields: dict) -> None:
        """Create or update a Phase 2 run record; `fields` are merged into the stored ones."""
        self._upsert_record("phase2_runs", "run_id", run_id, fields)

    def phase2_runs(self) -> list[dict]:
        return self._records("phase2_runs", "run_id")

    def get_phase2_run(self, run_id: str) -> dict | None:
        records = self._records("phase2_runs", "run_id", run_id)
        return records[0] if records else None

    def register_adapter(self, adapter_id: str, path, lineage: dict) -> None:
        """Record (or re-record) an adapter folder with where it came from."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO adapters(adapter_id, path, lineage, created_at) VALUES(?,?,?,?) "
                "ON CONFLICT(adapter_id) DO UPDATE SET path=excluded.path, lineage=excluded.lineage",
                (adapter_id, str(path), json.dumps(lineage, ensure_ascii=False, default=str), _now()),
            )

    def adapters(self) -> list[dict]:
        rows = self._query("SELECT adapter_id, path, lineage, created_at FROM adapters ORDER BY created_at, rowid")
        return [
            {"adapter_id": adapter_id, "path": path, "lineage": json.loads(lineage), "created_at": created}
            for adapter_id, path, lineage, created in rows
        ]

    def get_adapter(self, adapter_id: str) -> dict | None:
        return next((record for record in self.adapters() if record["adapter_id"] == adapter_id), None)
