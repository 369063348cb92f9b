"""The workspace: a folder with an SQLite database of conversations, their annotations,
imports, Phase 1 jobs, Phase 2 runs and adapters, plus folders for adapters, runs and caches.

Everything downstream reads conversations from here. It is built for 100k+ messages:
imports are streamed and written with `executemany` in batches inside one transaction
(all or nothing), listing pages with LIMIT/OFFSET over indexed columns, and reading
streams conversations in keyset-paged batches, so nothing loads the whole corpus.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from cognitivetwin_core.data.annotation_rows import (
    ANNOTATION_VERSION,
    MessageAnnotation,
    annotate_conversations,
    annotation_rows,
)
from cognitivetwin_core.data.conversation_identity import content_hash
from cognitivetwin_core.data.workspace_annotations import AnnotationStore
from cognitivetwin_core.data.workspace_connection import DB_NAME, database_error
from cognitivetwin_core.data.workspace_reading import ConversationSummary
from cognitivetwin_core.data.workspace_records import WorkspaceRecords
from cognitivetwin_core.data.workspace_schema import SCHEMA_VERSION
from cognitivetwin_core.data.workspace_settings import WorkspaceSettings
from cognitivetwin_core.data.workspace_writing import AddResult, ConversationWriter
from cognitivetwin_core.errors import CognitiveTwinError, InputError

__all__ = [
    "ANNOTATION_VERSION",
    "DB_NAME",
    "AddResult",
    "ConversationSummary",
    "MessageAnnotation",
    "Workspace",
    "annotate_conversations",
    "annotation_rows",
    "content_hash",
]


class Workspace(ConversationWriter, AnnotationStore, WorkspaceSettings, WorkspaceRecords):
    """One workspace folder, safe to share between threads: each thread gets its own SQLite
    connection, and with write-ahead logging readers (the app's Data tab) are never blocked
    by an import running on a worker thread; they see what was committed. Made of the
    connection and locking (`workspace_connection`), writing (`workspace_writing`), reading
    (`workspace_reading`, under `workspace_annotations`), settings and records modules."""

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
            raise database_error(self.db_path, exc) from exc
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
