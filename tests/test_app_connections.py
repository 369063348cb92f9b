"""The Connections tab: keys typed into password fields go to the real keyring (and only
there), are masked when shown again, can be removed, and the Test buttons report OK,
wrong key and no network against loopback fakes. Without a keyring nothing is stored."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit
from test_secrets import _secret_service_items, active_log_file, files_containing
from together_server import FakeTogether

from cognitivetwin_core.connections import secrets
from cognitivetwin_core.connections.checks import CheckStatus
from tests.waits import WORK_TIMEOUT_MS

needs_secret_service = pytest.mark.skipif(
    not os.environ.get("DBUS_SESSION_BUS_ADDRESS"),
    reason="needs the D-Bus session with an unlocked gnome-keyring that scripts/run-tests.sh starts",
)


@pytest.fixture()
def clean_keyring():
    """Remove the app's entries before and after (the test session's keyring is private)."""

    def wipe():
        if secrets.keyring_status().available:
            for name in secrets.KNOWN_SECRETS:
                secrets.delete_secret(name)

    wipe()
    yield
    wipe()


@pytest.fixture()
def tab(qtbot, qasync_loop, isolated_user_dirs):
    from app.main import create_application
    from app.tabs.connections_tab import ConnectionsTab

    create_application()  # the stylesheet, so screenshots look like the app
    widget = ConnectionsTab()
    qtbot.addWidget(widget)
    widget.resize(1000, 760)
    widget.show()
    with qtbot.waitSignal(widget.refreshed, timeout=WORK_TIMEOUT_MS):
        widget.refresh()
    return widget


def _click_and_wait(qtbot, button, signal=None, until=None, timeout=WORK_TIMEOUT_MS):
    if signal is not None:
        with qtbot.waitSignal(signal, timeout=timeout) as blocker:
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        return blocker.args
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(until, timeout=timeout)
    return None


def test_key_fields_are_password_fields(tab):
    for field in (tab.supabase_url, tab.supabase_key, tab.together_key, tab.huggingface_token):
        assert field.echoMode() == QLineEdit.EchoMode.Password


@needs_secret_service
def test_together_key_is_stored_masked_tested_and_removed(
    tab, qtbot, clean_keyring, isolated_user_dirs, test_output_dir, monkeypatch
):
    log_path = active_log_file()
    with FakeTogether(api_key="tgp_" + uuid.uuid4().hex) as fake:
        monkeypatch.setenv("TOGETHER_BASE_URL", fake.base_url)
        key = fake.api_key
        qtbot.keyClicks(tab.together_key, key)
        assert tab.together_key.displayText() != key
        _click_and_wait(qtbot, tab.together_save, until=lambda: tab.together_result.kind == "ok")
        assert "Saved in the system keyring" in tab.together_result.text()
        assert tab.together_key.placeholderText() == "stored in the keyring (hidden)"
        assert _secret_service_items(secrets.TOGETHER_API_KEY) == [key]
        assert tab.together_key.text() == "", "the field is cleared once the key is stored"
        assert key[-4:] in tab.together_stored.text() and key[:-4] not in tab.together_stored.text()

        # Test uses the stored key (the field is empty now): a real SDK call to the fake.
        status, result = _click_and_wait(qtbot, tab.together_test, signal=tab.checkFinished)
        assert status == "together" and result.status is CheckStatus.OK
        assert tab.together_result.kind == "ok" and tab.together_result.text().startswith("OK:")
        assert fake.count("GET", r"^/v1/files$") == 1
        tab.grab().save(str(test_output_dir / "connections_tab_together_ok.png"))

        # A wrong key typed in the field is tested without being stored.
        tab.together_key.setText("tgp_wrong_" + uuid.uuid4().hex)
        _, result = _click_and_wait(qtbot, tab.together_test, signal=tab.checkFinished)
        assert result.status is CheckStatus.WRONG_KEY and tab.together_result.text().startswith("Wrong key:")
        assert _secret_service_items(secrets.TOGETHER_API_KEY) == [key]
        tab.together_key.clear()

    # Unreachable: nothing listens on the port any more.
    _, result = _click_and_wait(qtbot, tab.together_test, signal=tab.checkFinished)
    assert result.status is CheckStatus.NO_NETWORK and tab.together_result.text().startswith("No network:")

    # The key is in no file the app (or anything else in this HOME) wrote.
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "stored together_api_key" in log_path.read_text()
    assert files_containing(key, Path.home(), isolated_user_dirs, log_path.parent) == []

    _click_and_wait(qtbot, tab.together_remove, until=lambda: "Removed" in tab.together_result.text())
    assert _secret_service_items(secrets.TOGETHER_API_KEY) == []
    assert tab.together_stored.text() == "Nothing stored yet."
    assert "api.together.ai" in tab.together_key.placeholderText(), "the hint for an empty field is back"


@needs_secret_service
def test_supabase_url_key_table_and_mapping(tab, qtbot, clean_keyring, isolated_user_dirs, tmp_path):
    from postgrest_server import PostgrestServer, make_turns_table

    from app import settings

    make_turns_table(tmp_path / "turns.sqlite3", 3, table="turns")
    with PostgrestServer(tmp_path / "turns.sqlite3", key="sb_secret_" + uuid.uuid4().hex) as server:
        url, key = server.url, server.key
        tab.supabase_url.setText(server.url)
        tab.supabase_key.setText(server.key)
        tab.supabase_table.setText("memory_turns")
        _click_and_wait(qtbot, tab.supabase_save, until=lambda: tab.supabase_result.kind == "ok")
        assert _secret_service_items(secrets.SUPABASE_URL) == [server.url]
        assert _secret_service_items(secrets.SUPABASE_KEY) == [server.key]

        _, result = _click_and_wait(qtbot, tab.supabase_test, signal=tab.checkFinished)
        assert result.status is CheckStatus.TABLE_MISSING
        assert tab.supabase_result.text().startswith("Table missing:")

        tab.supabase_table.setText("turns")
        tab.supabase_table.editingFinished.emit()
        assert settings.supabase_table() == "turns"
        _, result = _click_and_wait(qtbot, tab.supabase_test, signal=tab.checkFinished)
        assert result.status is CheckStatus.OK, result.message

        tab.supabase_key.setText("sb_secret_wrong_" + uuid.uuid4().hex)
        _, result = _click_and_wait(qtbot, tab.supabase_test, signal=tab.checkFinished)
        assert result.status is CheckStatus.WRONG_KEY

    tab.mapping_fields["conversation_id"].setText("session_id")
    tab.mapping_fields["row_id"].setText("")
    tab.mapping_fields["row_id"].editingFinished.emit()
    assert settings.supabase_mapping()["conversation_id"] == "session_id"
    assert settings.supabase_mapping_overrides() == {"conversation_id": "session_id", "row_id": ""}

    settings_text = settings.settings_path().read_text()
    assert key not in settings_text and url not in settings_text
    assert files_containing(key, Path.home(), isolated_user_dirs) == []


def test_without_a_keyring_the_tab_explains_and_stores_nothing(
    qtbot, qasync_loop, isolated_user_dirs, monkeypatch, test_output_dir
):
    import keyring
    from keyring.backends import fail

    from app.main import create_application
    from app.tabs.connections_tab import ConnectionsTab

    create_application()
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        tab = ConnectionsTab()
        qtbot.addWidget(tab)
        tab.resize(1000, 760)
        tab.show()
        with qtbot.waitSignal(tab.refreshed, timeout=WORK_TIMEOUT_MS):
            tab.refresh()
        assert not tab.keyring_available
        assert tab.keyring_message.isVisible() and tab.keyring_message.kind == "error"
        assert tab.keyring_message.text() == secrets.NO_BACKEND_MESSAGE
        assert not tab.together_save.isEnabled() and not tab.supabase_save.isEnabled()
        assert not tab.huggingface_save.isEnabled()
        tab.grab().save(str(test_output_dir / "connections_tab_no_keyring.png"))

        value = "tgp_" + uuid.uuid4().hex
        tab.together_key.setText(value)
        import asyncio

        task = asyncio.get_event_loop().create_task(tab.save_together())
        qtbot.waitUntil(task.done, timeout=WORK_TIMEOUT_MS)
        assert tab.together_result.kind == "error" and "No system keyring" in tab.together_result.text()
        assert tab.together_key.text() == value, "the typed key is not thrown away"
    finally:
        keyring.set_keyring(previous)
    assert files_containing(value, Path.home(), isolated_user_dirs) == []
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        assert _secret_service_items(secrets.TOGETHER_API_KEY) == []
