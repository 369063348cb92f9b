"""The Supabase importer through the real supabase-py client against a loopback PostgREST
(tests/postgrest_server.py) backed by an SQLite table of several thousand turns."""

import sqlite3

import pytest
from postgrest_server import PostgrestServer, make_turns_table

from cognitivetwin_core.cli import main as cli_main
from cognitivetwin_core.data.importers import ColumnMapping, StrictImportAborted, SupabaseSource, import_into
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import CognitiveTwinError, InputError

KEY = "test-service-role-key-0123456789"
CONVERSATIONS = 450


@pytest.fixture(scope="module")
def turns_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("supabase") / "turns.sqlite3"
    rows = make_turns_table(path, CONVERSATIONS)
    assert rows > 2500  # several pages of 1000
    return path, rows


@pytest.fixture()
def server(turns_db):
    with PostgrestServer(turns_db[0], key=KEY) as running:
        yield running


@pytest.fixture()
def workspace(tmp_path):
    with Workspace.open(tmp_path / "ws") as opened:
        yield opened


def source(server, **options) -> SupabaseSource:
    return SupabaseSource(url=server.url, key=KEY, retry_delay=0.01, **options)


def test_pages_through_the_table_in_order(server, workspace, turns_db):
    path, rows = turns_db
    ticks = []
    report = import_into(workspace, source(server), progress=ticks.append)
    assert report.ok and report.importer == "supabase"
    assert (report.conversations_accepted, report.messages_accepted) == (CONVERSATIONS, rows)
    assert workspace.count_conversations() == CONVERSATIONS and workspace.count_messages() == rows
    # Every conversation holds its turns in turn order, exactly as the table has them.
    db = sqlite3.connect(path)
    expected = db.execute(
        "SELECT role, content FROM memory_turns WHERE conversation_id='conv-00123' ORDER BY turn_index"
    ).fetchall()
    stored = workspace.get_conversation("conv-00123")
    assert [(m.role, m.content) for m in stored.messages] == expected
    assert stored.messages[0].created_at is not None
    # Pages: offset/limit query parameters, an exact count, a total order, the key on every call.
    pages = [r for r in server.requests if any(name == "offset" for name, _ in r["params"])]
    assert [dict(r["params"])["offset"] for r in pages] == [str(o) for o in range(0, rows, 1000)]
    assert all(dict(r["params"])["limit"] == "1000" for r in pages)
    assert dict(pages[0]["params"])["order"] == "conversation_id.asc,turn_index.asc,created_at.asc,id.asc"
    assert all("count=exact" in r["headers"].get("prefer", "") for r in pages)
    assert all(
        r["headers"].get("apikey") == KEY and r["headers"].get("authorization") == f"Bearer {KEY}"
        for r in server.requests
    )
    # Progress once per page, in rows, with the total.
    assert [t.done for t in ticks] == [min(o + 1000, rows) for o in range(0, rows, 1000)]
    assert ticks[-1].total == rows and ticks[-1].unit == "rows"
    # Importing again adds nothing.
    again = import_into(workspace, source(server))
    assert again.duplicates == CONVERSATIONS and workspace.count_conversations() == CONVERSATIONS


def test_a_page_size_above_the_cap_still_reads_everything(server, workspace, turns_db):
    report = import_into(workspace, source(server, page_size=5000))
    assert report.messages_accepted == turns_db[1]


def test_transient_errors_are_retried(server, workspace, turns_db):
    server.fail_next(2, status=503)
    report = import_into(workspace, source(server))
    assert report.messages_accepted == turns_db[1]
    assert any(r["params"] == [("select", "*"), ("limit", "1")] for r in server.requests)


def test_persistent_errors_give_up_with_a_message(server, workspace):
    server.fail_next(10, status=503)
    with pytest.raises(CognitiveTwinError, match="Supabase returned an error"):
        import_into(workspace, source(server, retries=2))
    assert workspace.count_conversations() == 0


def test_wrong_key(server, workspace):
    with pytest.raises(CognitiveTwinError, match="rejected the API key") as caught:
        import_into(workspace, SupabaseSource(url=server.url, key="wrong-key-abcdef"))
    assert "wrong-key-abcdef" not in str(caught.value)


@pytest.mark.parametrize("code", ["PGRST205", "42P01"])
def test_missing_table(turns_db, workspace, code):
    with (
        PostgrestServer(turns_db[0], key=KEY, missing_table_code=code) as server,
        pytest.raises(InputError, match="no table 'memory_turnz'"),
    ):
        import_into(workspace, source(server, table="memory_turnz"))


def test_missing_column(server, workspace):
    with pytest.raises(InputError, match="no column 'body' \\(mapped to content\\).*conversation_id"):
        import_into(workspace, source(server, mapping=ColumnMapping.from_pairs(["body=content"])))


def test_wrong_url(workspace):
    with pytest.raises(CognitiveTwinError, match="Cannot reach Supabase at http://127.0.0.1:9"):
        import_into(workspace, SupabaseSource(url="http://127.0.0.1:9", key=KEY, retries=0))
    with pytest.raises(InputError, match="not valid"):
        import_into(workspace, SupabaseSource(url="supabase.co/project", key=KEY))


@pytest.fixture()
def custom_table(tmp_path):
    path = tmp_path / "custom.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE chat_log(session_id TEXT, speaker TEXT, body TEXT, seq INTEGER, ts TEXT)")
    rows = [
        ("s1", "human", "hello there", 0, "2026-01-01T10:00:00Z"),
        ("s1", "ai", "hi, how can I help?", 1, "2026-01-01T10:00:05Z"),
        ("s2", "user", "question one", 0, None),
        ("s2", "wizard", "a spell", 1, None),
        ("s2", "assistant", "answer", 2, None),
        ("s3", "user", "", 0, None),
        ("s4", "user", "still here?", 0, None),
        ("s4", "assistant", "yes", 1, None),
    ]
    db.executemany("INSERT INTO chat_log VALUES(?,?,?,?,?)", rows)
    db.commit()
    db.close()
    return path


def test_a_column_mapping_and_bad_rows(custom_table, workspace):
    mapping = ColumnMapping.from_pairs(
        ["session_id=conversation_id", "speaker=role", "body=content", "seq=turn_order", "ts=timestamp"]
    )
    with PostgrestServer(custom_table, key=KEY) as server:
        report = import_into(workspace, source(server, table="chat_log", mapping=mapping))
        assert [c.id for c in workspace.iter_conversations()] == ["s1", "s4"]
        assert [(r.record, r.field) for r in report.rejected] == [(4, "speaker"), (6, "body")]
        assert "unknown role 'wizard'" in report.rejected[0].reason and "'s2' skipped" in report.rejected[0].reason
        assert report.warnings == ["no column 'id' for row_id: read without it"]
        assert workspace.get_conversation("s1").messages[1].role == "assistant"
        with pytest.raises(StrictImportAborted):
            import_into(workspace, source(server, table="chat_log", mapping=mapping), strict=True)
        with pytest.raises(InputError, match="Unknown field"):
            ColumnMapping.from_pairs(["body=text"])


@pytest.mark.slow
def test_cli_import_and_prepare_data(server, tmp_path, monkeypatch, capsys, turns_db):
    monkeypatch.setenv("SUPABASE_URL", server.url)
    monkeypatch.setenv("SUPABASE_KEY", KEY)
    workspace_dir = tmp_path / "cli-ws"
    assert cli_main(["data", "import", "--supabase", "--workspace", str(workspace_dir), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"{CONVERSATIONS} conversations, {turns_db[1]} messages accepted" in out
    assert KEY not in out
    import argparse

    from cognitivetwin_core.cli.data_import_cmd import prepare_phase2_data

    target = tmp_path / "phase2.jsonl"
    args = argparse.Namespace(workspace=str(workspace_dir), data_out=str(target), quiet=True)
    assert prepare_phase2_data(args) == 0
    assert sum(1 for _ in target.open()) == turns_db[1]
    monkeypatch.setenv("SUPABASE_KEY", "bad-key")
    assert cli_main(["data", "import", "--supabase", "--workspace", str(workspace_dir), "--quiet"]) != 0
    assert "rejected the API key" in capsys.readouterr().err
