"""The workspace database schema, as numbered migrations applied in order.

A migration is never edited once released: add a new one. `meta.schema_version` records
the last one applied; a database from a newer version of the app is refused, not damaged.
A migration is SQL (statements separated by ";") or a function given the open transaction's
connection, for changes SQL cannot compute (hashes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from cognitivetwin_core.data.conversation_identity import rehash_stored_conversations

MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    # 1: conversations, messages with their annotations, imports, Phase 1 jobs, Phase 2 runs, adapters.
    """
    CREATE TABLE imports(
        id INTEGER PRIMARY KEY,
        source_label TEXT NOT NULL,
        importer TEXT,
        location TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        conversations INTEGER NOT NULL DEFAULT 0,
        messages INTEGER NOT NULL DEFAULT 0,
        duplicates INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0,
        report TEXT
    );
    CREATE TABLE conversations(
        pk INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        title TEXT,
        content_hash TEXT NOT NULL UNIQUE,
        message_count INTEGER NOT NULL,
        first_at TEXT,
        preview TEXT,
        import_id INTEGER REFERENCES imports(id),
        phase_mask INTEGER NOT NULL DEFAULT 0,
        pattern_mask INTEGER NOT NULL DEFAULT 0,
        annotation_version TEXT
    );
    CREATE INDEX conversations_by_source ON conversations(source, pk);
    CREATE INDEX conversations_by_length ON conversations(message_count, pk);
    CREATE INDEX conversations_by_annotation ON conversations(annotation_version);
    CREATE TABLE messages(
        conversation_pk INTEGER NOT NULL REFERENCES conversations(pk) ON DELETE CASCADE,
        turn_index INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT,
        explicit_patterns TEXT,
        given_trajectory TEXT,
        depth REAL,
        sibling_order REAL,
        homogeneity REAL,
        temporal REAL,
        complexity REAL,
        phase_id INTEGER,
        pattern_mask INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX messages_by_turn ON messages(conversation_pk, turn_index);
    CREATE TABLE phase1_jobs(
        job_id TEXT PRIMARY KEY,
        fields TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE phase2_runs(
        run_id TEXT PRIMARY KEY,
        fields TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE adapters(
        adapter_id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        lineage TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 2: the participant's name per message (messenger exports) and workspace settings (the twin's speaker).
    """
    ALTER TABLE messages ADD COLUMN speaker TEXT;
    CREATE TABLE settings(
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 3: conversation identity (docs/data-and-model.md): the source's own id per conversation, and
    # which imports counted duplicates by their texts alone (they may have left conversations out).
    """
    ALTER TABLE conversations ADD COLUMN source_id TEXT;
    ALTER TABLE imports ADD COLUMN duplicates_by_text INTEGER NOT NULL DEFAULT 0;
    UPDATE imports SET duplicates_by_text = duplicates WHERE duplicates > 0;
    """,
    # 4: conversation identity: every stored conversation's hash recomputed with speakers, times and source ids.
    rehash_stored_conversations,
    # 5: the blind test's answers (data/blind_answers.py): which of two replies the person picked.
    """
    CREATE TABLE blind_answers(
        id INTEGER PRIMARY KEY,
        adapter TEXT NOT NULL,
        mode TEXT NOT NULL,
        session TEXT NOT NULL,
        example INTEGER NOT NULL,
        context TEXT NOT NULL,
        real_position INTEGER NOT NULL,
        choice INTEGER,
        correct INTEGER,
        answered_at TEXT NOT NULL
    );
    CREATE INDEX blind_answers_by_adapter ON blind_answers(adapter, mode);
    """,
    # 6: speaker links: one person's names, numbers, addresses and handles across sources
    # (cognitivetwin_core/data/person_identity.py).
    """
    CREATE TABLE speaker_links(
        alias TEXT PRIMARY KEY,
        name TEXT NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
