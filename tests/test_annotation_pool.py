"""Annotating a big import on worker processes stores exactly what annotating in the
importing thread stores, keeps batch order, and survives a worker dying."""

import os
import sqlite3
import sys

import pytest

from cognitivetwin_core.annotation import pool as annotation_pool
from cognitivetwin_core.annotation.pool import AnnotationPipeline
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.workspace import Workspace, annotate_conversations

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")


def conversations(count: int) -> list[Conversation]:
    texts = [
        "How do I fix this error? ```python\nprint('hi')\n```",
        "Because the cache is stale; for example, clear it first. Then run it again.",
        "Thanks, that worked!",
        "Write a plan: step 1, migrate; after that, backfill. Which is better, tabs or spaces?",
        "No, that's wrong: the port is 5433.\ndef f(x):\n    return x\nx = f(2)\n",
    ]
    result = []
    for number in range(count):
        messages = [
            Message("user" if turn % 2 == 0 else "assistant", f"{texts[(number + turn) % 5]} #{number}-{turn}")
            for turn in range(2 + number % 7)
        ]
        # A few share an id, so ids are assigned across batches still in flight.
        result.append(Conversation(f"c{number % 700}", "test", messages))
    return result


def stored(path) -> tuple[list, list]:
    with sqlite3.connect(path / "workspace.sqlite3") as db:
        return (
            db.execute(
                "SELECT pk, id, content_hash, message_count, phase_mask, pattern_mask FROM conversations ORDER BY pk"
            ).fetchall(),
            db.execute("SELECT * FROM messages ORDER BY conversation_pk, turn_index").fetchall(),
        )


def test_pooled_import_stores_exactly_what_a_single_process_import_stores(tmp_path, monkeypatch):
    items = conversations(1500) + conversations(40)  # the repeated ones are duplicates
    monkeypatch.setenv(annotation_pool.WORKERS_ENV, "0")
    with Workspace.open(tmp_path / "single") as workspace:
        single = workspace.add_conversations(items)
    monkeypatch.setenv(annotation_pool.WORKERS_ENV, "2")
    monkeypatch.setattr(annotation_pool, "POOL_AFTER_MESSAGES", 500)
    used = []
    original_init = AnnotationPipeline.__init__

    def spy(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        used.append(self)

    monkeypatch.setattr(AnnotationPipeline, "__init__", spy)
    with Workspace.open(tmp_path / "pooled") as workspace:
        pooled = workspace.add_conversations(items)
    assert used and used[0].pooled
    assert (pooled.conversations_added, pooled.duplicates, pooled.ids) == (
        single.conversations_added,
        single.duplicates,
        single.ids,
    )
    assert single.duplicates == 40 and len(set(single.ids)) == 1500
    assert stored(tmp_path / "pooled") == stored(tmp_path / "single")


def dies_in_a_worker(batch):
    if os.getpid() != PARENT:
        os._exit(1)
    return annotate_conversations(batch)


PARENT = os.getpid()


def test_a_dead_worker_leaves_its_batches_to_the_importing_process():
    batches = [conversations(30)[start : start + 10] for start in (0, 10, 20)]
    with AnnotationPipeline(dies_in_a_worker, workers=2, pool_after_messages=0) as pipeline:
        done = [key for batch_number, batch in enumerate(batches) for key, _ in pipeline.submit(batch_number, batch)]
        results = list(pipeline.drain())
    assert done + [key for key, _ in results] == [0, 1, 2]
    assert [rows for _, rows in results] == [annotate_conversations(batches[key]) for key, _ in results]
    assert pipeline.pooled


def test_small_imports_and_workers_off_stay_in_process(monkeypatch):
    monkeypatch.setenv(annotation_pool.WORKERS_ENV, "0")
    assert annotation_pool.worker_count() == 0
    monkeypatch.setenv(annotation_pool.WORKERS_ENV, "3")
    with AnnotationPipeline(annotate_conversations) as pipeline:
        out = list(pipeline.submit("only", conversations(5)))
        assert not pipeline.pooled
    assert out == [("only", annotate_conversations(conversations(5)))]
