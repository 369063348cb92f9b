"""The SQLite workspace: transactional imports, de-duplication, paging and filters,
streaming, annotations and their refresh, records other modules own, schema versions."""

import sqlite3
import threading

import pytest

from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
from cognitivetwin_core.annotation.trajectory import annotate
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data import workspace as workspace_module
from cognitivetwin_core.data import workspace_annotations
from cognitivetwin_core.data.workspace import ConversationSummary, Workspace
from cognitivetwin_core.errors import CognitiveTwinError, InputError


def conversation(number: int, turns: int = 4, source: str = "test") -> Conversation:
    messages = []
    for turn in range(turns):
        if turn % 2 == 0:
            messages.append(Message("user", f"Why does job {number} fail at step {turn}?"))
        else:
            messages.append(Message("assistant", f"Because the cache for job {number} is stale; clear it."))
    return Conversation(f"conv-{number}", source, messages, title=f"Job {number}")


@pytest.fixture()
def workspace(tmp_path):
    with Workspace.open(tmp_path / "ws") as opened:
        yield opened


def test_open_creates_the_folders_and_database(tmp_path):
    ws = Workspace.open(tmp_path / "new" / "ws")
    for folder in (ws.path, ws.adapters_dir, ws.runs_dir, ws.cache_dir):
        assert folder.is_dir()
    assert ws.db_path.is_file()
    assert ws.count_conversations() == 0 and ws.count_messages() == 0
    ws.close()


def test_default_workspace_lives_in_the_user_data_dir(isolated_user_dirs):
    ws = Workspace.open()
    assert ws.path.is_relative_to((isolated_user_dirs / "user-data").resolve())
    ws.close()


def test_a_file_is_not_a_workspace(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        Workspace.open(tmp_path / "file")


def test_add_get_and_deduplicate(workspace):
    result = workspace.add_conversations([conversation(i) for i in range(10)], source_label="unit")
    assert (result.conversations_added, result.messages_added, result.duplicates) == (10, 40, 0)
    again = workspace.add_conversations([conversation(i) for i in range(12)], source_label="unit")
    assert (again.conversations_added, again.duplicates) == (2, 10)
    assert workspace.count_conversations() == 12 and workspace.count_messages() == 48
    stored = workspace.get_conversation("conv-3")
    assert [(m.role, m.content) for m in stored.messages] == [(m.role, m.content) for m in conversation(3).messages]
    assert stored.title == "Job 3" and stored.source == "test"
    with pytest.raises(InputError, match="No conversation 'nope'"):
        workspace.get_conversation("nope")


def test_the_fast_content_hash_is_the_conversation_content_hash():
    tricky = Conversation(
        "x", "t", [Message("user", 'quote " backslash \\ tab \t é 🌸 \u2028'), Message("assistant", "")]
    )
    for item in (tricky, conversation(3)):
        assert workspace_module.content_hash(item) == item.content_hash()


def test_same_id_with_different_content_gets_a_new_id(workspace):
    workspace.add_conversations([conversation(1)])
    other = Conversation("conv-1", "test", [Message("user", "something else entirely")])
    result = workspace.add_conversations([other])
    assert result.ids == ["conv-1~2"]
    assert workspace.get_conversation("conv-1~2").messages[0].content == "something else entirely"


def test_an_import_is_all_or_nothing(workspace):
    def failing():
        for number in range(600):  # more than one batch is written before the failure
            yield conversation(number)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError):
        workspace.add_conversations(failing())
    assert workspace.count_conversations() == 0 and workspace.count_messages() == 0
    assert workspace.imports() == []


def test_paging_filters_and_search(workspace):
    conversations = [conversation(i, turns=2 + i % 5, source="a" if i % 2 else "b") for i in range(30)]
    conversations.append(Conversation("special", "b", [Message("user", "Thanks, 100% of the_widgets arrived")]))
    workspace.add_conversations(conversations)
    first = workspace.list_conversations(0, 10)
    second = workspace.list_conversations(10, 10)
    assert [s.id for s in first] == [f"conv-{i}" for i in range(10)]
    assert [s.id for s in second] == [f"conv-{i}" for i in range(10, 20)]
    assert isinstance(first[0], ConversationSummary) and first[0].message_count == 2
    assert first[0].preview.startswith("Why does job 0 fail")
    assert workspace.count_conversations(source="a") == 15
    assert all(s.source == "a" for s in workspace.list_conversations(0, 100, source="a"))
    assert workspace.count_conversations(min_messages=5, max_messages=6) == 12
    assert [s.id for s in workspace.list_conversations(search="job 17 ")] == ["conv-17"]
    # LIKE wildcards in the search text are literal.
    assert [s.id for s in workspace.list_conversations(search="100%")] == ["special"]
    assert [s.id for s in workspace.list_conversations(search="the_w")] == ["special"]
    assert workspace.count_conversations(search="zzz-not-there") == 0
    assert workspace.count_conversations(pattern="acknowledgement") == 1
    assert workspace.count_conversations(pattern="debugging") == 30
    # Every conversation of 2+ messages has an opening and a closing message.
    assert workspace.count_conversations(phase=5) == 30
    assert workspace.count_conversations(phase=1) == 12  # only 5- and 6-message ones have a depth in (0.10, 0.25]
    with pytest.raises(InputError, match="Unknown pattern"):
        workspace.count_conversations(pattern="nonsense")


def test_iter_conversations_streams_in_batches(workspace, monkeypatch):
    workspace.add_conversations([conversation(i) for i in range(700)])
    calls = []
    original = Workspace._load

    def counting(db, pks):
        calls.append(len(pks))
        return original(db, pks)

    monkeypatch.setattr(Workspace, "_load", staticmethod(counting))
    ids = [c.id for c in workspace.iter_conversations()]
    assert ids == [f"conv-{i}" for i in range(700)]
    assert max(calls) <= 256 and len(calls) >= 3
    assert [c.id for c in workspace.iter_conversations(ids=["conv-5", "conv-2"])] == ["conv-2", "conv-5"]
    assert list(workspace.iter_conversations(ids=[])) == []


def test_annotations_match_the_annotator_and_refresh_on_version_change(workspace, monkeypatch):
    conv = conversation(1, turns=6)
    workspace.add_conversations([conv])
    annotations = workspace.annotations("conv-1")
    expected = annotate(conv)
    assert [a.trajectory for a in annotations] == expected
    assert annotations[0].patterns == ("question", "debugging")
    assert set(annotations[1].patterns) >= {"explanation"}
    # Corrupt the stored values, then pretend the algorithm changed: they are recomputed.
    with workspace._transaction() as db:
        db.execute("UPDATE messages SET depth=0.5, pattern_mask=0")
    assert workspace.annotations("conv-1")[0].coordinates[0] == 0.5
    monkeypatch.setattr(workspace_annotations, "ANNOTATION_VERSION", "999.1")
    assert workspace.refresh_annotations() == 1
    assert [a.trajectory for a in workspace.annotations("conv-1")] == expected
    assert workspace.refresh_annotations() == 0


def test_given_trajectories_survive_until_recompute_is_asked(workspace):
    given = {"coordinates": [0.9, 0.1, 0.2, 0.3, 0.4], "phase_id": 4, "homogeneity": 0.2, "turn_index": 0}
    conv = Conversation("g", "t", [Message("user", "hi", trajectory=given), Message("assistant", "hello")])
    workspace.add_conversations([conv])
    assert workspace.annotations("g")[0].phase_id == 4
    assert workspace.get_conversation("g").messages[0].trajectory == given
    workspace.refresh_annotations(recompute_given=True)
    assert workspace.annotations("g")[0].phase_id == 0
    assert workspace.get_conversation("g").messages[0].trajectory is None


def test_explicit_patterns_are_stored_and_win(workspace):
    conv = Conversation("p", "t", [Message("user", "Why?", patterns=["reflection"])])
    workspace.add_conversations([conv])
    assert workspace.annotations("p")[0].patterns == ("reflection",)
    assert workspace.get_conversation("p").messages[0].patterns == ["reflection"]


def test_stats(workspace):
    workspace.add_conversations([conversation(i) for i in range(5)], source_label="unit", importer="x")
    stats = workspace.stats()
    assert stats["conversations"] == 5 and stats["messages"] == 20
    assert stats["by_role"] == {"assistant": 10, "user": 10}
    assert set(stats["by_pattern"]) == set(PATTERN_NAMES) and stats["by_pattern"]["question"] == 10
    assert sum(stats["by_phase"].values()) == 20
    assert stats["imports"][0]["conversations"] == 5 and stats["imports"][0]["importer"] == "x"


def test_data_hash_depends_on_content_not_order(workspace, tmp_path):
    workspace.add_conversations([conversation(i) for i in range(4)])
    other = Workspace.open(tmp_path / "other")
    other.add_conversations([conversation(i) for i in reversed(range(4))])
    assert workspace.data_hash() == other.data_hash()
    assert workspace.data_hash(["conv-1"]) == other.data_hash(["conv-1"]) != workspace.data_hash()
    other.add_conversations([conversation(9)])
    assert workspace.data_hash() != other.data_hash()
    other.close()


def test_phase1_jobs_phase2_runs_and_adapters(workspace, tmp_path):
    workspace.upsert_phase1_job("intent-1", {"status": "creating", "base": "llama-3.2-1b"})
    workspace.upsert_phase1_job("intent-1", {"status": "running", "together_id": "ft-123"})
    job = workspace.get_phase1_job("intent-1")
    assert job["status"] == "running" and job["base"] == "llama-3.2-1b" and job["together_id"] == "ft-123"
    assert job["job_id"] == "intent-1" and job["created_at"]
    assert workspace.get_phase1_job("missing") is None
    workspace.upsert_phase2_run("run-a", {"epochs": 2, "metrics": {"loss": [1.0, 0.5]}})
    assert workspace.phase2_runs()[0]["metrics"] == {"loss": [1.0, 0.5]}
    workspace.register_adapter("ad-1", tmp_path / "adapter", {"job": "ft-123"})
    assert workspace.adapters() == [
        {
            "adapter_id": "ad-1",
            "path": str(tmp_path / "adapter"),
            "lineage": {"job": "ft-123"},
            "created_at": workspace.adapters()[0]["created_at"],
        }
    ]
    # Records persist across a reopen.
    path = workspace.path
    workspace.close()
    reopened = Workspace.open(path)
    assert reopened.get_phase1_job("intent-1")["together_id"] == "ft-123"
    assert len(reopened.phase1_jobs()) == 1 and len(reopened.adapters()) == 1
    reopened.close()


def test_a_newer_schema_is_refused_not_damaged(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    ws.close()
    db = sqlite3.connect(tmp_path / "ws" / "workspace.sqlite3")
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(CognitiveTwinError, match="newer CognitiveTwin"):
        Workspace.open(tmp_path / "ws")


def test_threads_can_share_a_workspace(workspace):
    workspace.add_conversations([conversation(i) for i in range(50)])
    errors = []

    def reader():
        try:
            for _ in range(20):
                assert len(workspace.list_conversations(0, 10)) == 10
                workspace.annotations("conv-3")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    workspace.add_conversations([conversation(i) for i in range(50, 80)])
    for thread in threads:
        thread.join()
    assert not errors and workspace.count_conversations() == 80


def test_scale_pages_without_loading_everything(workspace):
    # 20k messages here (the benchmark covers 100k+): listing a far page stays cheap.
    workspace.add_conversations(conversation(i, turns=10) for i in range(2000))
    assert workspace.count_messages() == 20000
    page = workspace.list_conversations(1990, 20)
    assert [s.id for s in page] == [f"conv-{i}" for i in range(1990, 2000)]
    plan = " ".join(
        str(row)
        for row in workspace._query(
            "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM conversations c WHERE c.source = ?", ("test",)
        )
    )
    assert "conversations_by_source" in plan


def test_readers_are_not_blocked_by_an_import_in_progress(workspace):
    workspace.add_conversations([conversation(i) for i in range(3)])
    halfway = threading.Event()
    release = threading.Event()

    def slow_source():
        for number in range(3, 600):
            if number == 400:
                halfway.set()
                assert release.wait(30)
            yield conversation(number)

    importer = threading.Thread(target=lambda: workspace.add_conversations(slow_source()))
    importer.start()
    assert halfway.wait(30)
    # The import holds the write transaction; this thread still reads the committed state.
    assert workspace.count_conversations() == 3
    assert [s.id for s in workspace.list_conversations(0, 5)] == ["conv-0", "conv-1", "conv-2"]
    release.set()
    importer.join(30)
    assert workspace.count_conversations() == 600


def test_delete_conversations_removes_their_messages(workspace):
    workspace.add_conversations([conversation(i) for i in range(3)])
    assert workspace.delete_conversations(["conv-1", "missing"]) == 1
    assert [s.id for s in workspace.list_conversations()] == ["conv-0", "conv-2"]
    assert workspace.count_messages() == 8
    # Deleted content can be imported again.
    assert workspace.add_conversations([conversation(1)]).conversations_added == 1
