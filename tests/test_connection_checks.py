"""The Test buttons' checks, with the real SDKs against loopback fakes: OK, wrong key,
wrong URL, unreachable, missing table. Keys never appear in a result."""

from __future__ import annotations

import asyncio
import socket

import pytest

from cognitivetwin_core.connection_checks import CheckStatus, check_supabase, check_together
from together_server import FakeTogether


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
