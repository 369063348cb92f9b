"""The Test buttons' checks, with the real SDKs against loopback fakes: OK, wrong key,
wrong URL, unreachable, missing table. Keys never appear in a result."""

from __future__ import annotations

import asyncio
import socket

import pytest
from together_server import FakeTogether

from cognitivetwin_core.connections.checks import CheckStatus, check_supabase, check_together


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the probe is closed


@pytest.fixture()
def fake_together():
    with FakeTogether() as fake:
        yield fake


def test_together_ok(fake_together):
    result = asyncio.run(check_together(fake_together.api_key, fake_together.base_url))
    assert result.status is CheckStatus.OK, result.message
    assert "key works" in result.message
    assert fake_together.count("GET", r"^/v1/files$") == 1
    assert fake_together.api_key not in result.message


def test_together_wrong_key(fake_together):
    wrong = "tgp_wrong_key_0123456789abcdef"
    result = asyncio.run(check_together(wrong, fake_together.base_url))
    assert result.status is CheckStatus.WRONG_KEY
    assert "refused the key" in result.message and wrong not in result.message


def test_together_unreachable():
    result = asyncio.run(check_together("tgp_any_key_0123456789", _closed_port_url()))
    assert result.status is CheckStatus.NO_NETWORK
    assert "Could not connect" in result.message


def test_together_wrong_address_is_a_wrong_url(fake_together):
    # The legacy `/v1` suffix doubles the path (reference §7.1): the server answers 404.
    result = asyncio.run(check_together(fake_together.api_key, fake_together.base_url + "/v1"))
    assert result.status is CheckStatus.WRONG_URL


def test_together_server_error_is_reported_plainly(fake_together):
    fake_together.fail("GET", r"^/v1/files$", 503, headers={"x-should-retry": "false"})
    result = asyncio.run(check_together(fake_together.api_key, fake_together.base_url))
    assert result.status is CheckStatus.FAILED and "HTTP 503" in result.message


def test_missing_key_needs_no_network():
    assert asyncio.run(check_together("")).status is CheckStatus.WRONG_KEY
    assert asyncio.run(check_supabase("https://x.supabase.co", "")).status is CheckStatus.WRONG_KEY
    assert asyncio.run(check_supabase("x.supabase.co", "key")).status is CheckStatus.WRONG_URL


def test_supabase_unreachable():
    result = asyncio.run(check_supabase(_closed_port_url(), "sb_secret_" + "k" * 20, "memory_turns"))
    assert result.status is CheckStatus.NO_NETWORK


def test_supabase_unknown_host_is_a_wrong_url():
    result = asyncio.run(check_supabase("https://no-such-project.invalid", "sb_secret_" + "k" * 20))
    assert result.status is CheckStatus.WRONG_URL


@pytest.fixture()
def fake_supabase(tmp_path):
    from postgrest_server import PostgrestServer, make_turns_table

    make_turns_table(tmp_path / "turns.sqlite3", 5)
    with PostgrestServer(tmp_path / "turns.sqlite3", key="sb_secret_test_key_0123456789") as server:
        yield server


def test_supabase_ok_reads_one_row(fake_supabase):
    result = asyncio.run(check_supabase(fake_supabase.url, fake_supabase.key, "memory_turns"))
    assert result.status is CheckStatus.OK, result.message
    assert "memory_turns" in result.message and fake_supabase.key not in result.message
    [request] = fake_supabase.requests
    assert request["path"] == "/rest/v1/memory_turns" and ("limit", "1") in request["params"]


def test_supabase_wrong_key(fake_supabase):
    wrong = "sb_secret_wrong_key_0123456789"
    result = asyncio.run(check_supabase(fake_supabase.url, wrong, "memory_turns"))
    assert result.status is CheckStatus.WRONG_KEY
    assert wrong not in result.message


@pytest.mark.parametrize("code", ["PGRST205", "42P01"])
def test_supabase_missing_table(tmp_path, code):
    from postgrest_server import PostgrestServer, make_turns_table

    make_turns_table(tmp_path / "turns.sqlite3", 2)
    with PostgrestServer(tmp_path / "turns.sqlite3", key="k" * 20, missing_table_code=code) as server:
        result = asyncio.run(check_supabase(server.url, server.key, "memory_turn"))
    assert result.status is CheckStatus.TABLE_MISSING
    assert '"memory_turn" does not exist' in result.message


def test_supabase_address_without_postgrest_is_a_wrong_url(fake_together):
    # Any HTTP server that is not Supabase: the Together fake answers 404 for /rest/v1/...
    result = asyncio.run(check_supabase(fake_together.base_url, "k" * 20, "memory_turns"))
    assert result.status in (CheckStatus.WRONG_URL, CheckStatus.WRONG_KEY)
