"""Keys go to the real OS keyring (Secret Service inside the D-Bus session that
scripts/run-tests.sh starts) and nowhere else; without a keyring nothing is stored."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cognitivetwin_core.connections import secrets
from cognitivetwin_core.errors import CognitiveTwinError
from tests.waits import WORK_TIMEOUT_S

needs_secret_service = pytest.mark.skipif(
    not os.environ.get("DBUS_SESSION_BUS_ADDRESS"),
    reason="needs the D-Bus session with an unlocked gnome-keyring that scripts/run-tests.sh starts",
)


def _secret_service_items(name: str) -> list[str]:
    """What the Secret Service itself holds for `name`, read without the keyring library."""
    import secretstorage

    connection = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(connection)
        items = collection.search_items({"service": secrets.SERVICE_NAME, "username": name})
        return [item.get_secret().decode() for item in items]
    finally:
        connection.close()


def files_containing(value: str, *roots: Path) -> list[Path]:
    """Every file under `roots` whose bytes contain `value` (the keyring's own store excepted
    only if it kept the value in clear, which the test then reports)."""
    needle = value.encode()
    hits = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    if needle in path.read_bytes():
                        hits.append(path)
                except OSError:
                    continue
    return hits


def active_log_file() -> Path:
    """The file the app's log handler writes to. `configure_logging` is once per process, so
    in a test session this can be an earlier test's folder, not this test's isolated one."""
    from cognitivetwin_core.logging_setup import configure_logging

    configure_logging(logging.DEBUG)
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_cognitivetwin", False) and hasattr(handler, "baseFilename"):
            handler.flush()
            return Path(handler.baseFilename)
    raise AssertionError("no CognitiveTwin log handler")


@pytest.fixture()
def secret_name():
    name = f"test_{uuid.uuid4().hex[:8]}"
    yield name
    try:
        secrets.delete_secret(name)
    except CognitiveTwinError:
        pass


@needs_secret_service
def test_keyring_is_available_in_the_test_session():
    status = secrets.keyring_status()
    assert status.available, status.message
    assert "SecretService" in status.backend_name or "Secret" in status.backend_name


@needs_secret_service
def test_secret_round_trip_lives_in_the_secret_service_only(secret_name, isolated_user_dirs):
    log_path = active_log_file()
    value = "tgp_" + uuid.uuid4().hex + "Zq"
    assert secrets.get_secret(secret_name) is None
    secrets.set_secret(secret_name, value)
    assert _secret_service_items(secret_name) == [value]
    assert secrets.get_secret(secret_name) == value

    replacement = "tgp_" + uuid.uuid4().hex + "Yr"
    secrets.set_secret(secret_name, replacement)
    assert _secret_service_items(secret_name) == [replacement]

    # A careless log line carrying the key is redacted because the key was registered.
    logging.getLogger("test").warning("oops, the key is %s", replacement)
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "oops, the key is [REDACTED]" in log_path.read_text()

    roots = [Path.home(), isolated_user_dirs, log_path.parent]
    assert files_containing(value, *roots) == []
    assert files_containing(replacement, *roots) == []

    assert secrets.delete_secret(secret_name) is True
    assert _secret_service_items(secret_name) == []
    assert secrets.get_secret(secret_name) is None
    assert secrets.delete_secret(secret_name) is False


def test_empty_value_is_refused_with_a_plain_message(secret_name):
    with pytest.raises(CognitiveTwinError, match="empty"):
        secrets.set_secret(secret_name, "   ")


_NO_BACKEND_PROBE = r"""
import json, sys
from cognitivetwin_core.connections import secrets
from cognitivetwin_core.errors import CognitiveTwinError
status = secrets.keyring_status()
result = {"available": status.available, "message": status.message, "backend": status.backend_name}
try:
    secrets.set_secret(sys.argv[1], sys.argv[2])
    result["set"] = "stored"
except secrets.KeyringUnavailableError as exc:
    result["set"] = str(exc)
    result["set_context"] = repr(exc.__context__) + repr(exc.__cause__)
try:
    result["get"] = secrets.get_secret(sys.argv[1])
except CognitiveTwinError as exc:
    result["get"] = "error: " + str(exc)
print(json.dumps(result))
"""


def test_without_a_backend_the_key_is_refused_and_stored_nowhere(tmp_path, secret_name):
    value = "tgp_" + uuid.uuid4().hex + "Xw"
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "COGNITIVETWIN_LOG_DIR": str(tmp_path / "log"),
        "COGNITIVETWIN_CONFIG_DIR": str(tmp_path / "config"),
    }
    out = subprocess.run(
        [sys.executable, "-c", _NO_BACKEND_PROBE, secret_name, value],
        capture_output=True,
        text=True,
        env=env,
        timeout=WORK_TIMEOUT_S,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["available"] is False
    assert result["message"] == secrets.NO_BACKEND_MESSAGE
    assert "gnome-keyring" in result["message"] and "never saves keys anywhere else" in result["message"]
    assert result["set"] == secrets.NO_BACKEND_MESSAGE
    assert value not in result["set_context"] and value not in out.stderr
    assert result["get"].startswith("error: No system keyring")
    assert files_containing(value, tmp_path) == []
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        assert _secret_service_items(secret_name) == []


class _DismissedPromptKeyring:
    """Behaves as SecretService does when the collection cannot be created or unlocked."""

    priority = 1
    name = "SecretService Keyring (prompt dismissed)"

    def get_password(self, service, username, *value):
        from keyring.errors import InitError

        raise InitError("Failed to create the collection: Prompt dismissed.")

    set_password = delete_password = get_password


def test_a_locked_keyring_is_explained_not_traced(monkeypatch, secret_name):
    monkeypatch.setattr(secrets, "_backend", lambda: _DismissedPromptKeyring())
    status = secrets.keyring_status()
    assert not status.available
    assert status.message == secrets.LOCKED_MESSAGE
    assert "locked" in status.message and "Traceback" not in status.message
    with pytest.raises(secrets.KeyringUnavailableError) as info:
        secrets.set_secret(secret_name, "sk-" + "a" * 30)
    assert str(info.value) == secrets.LOCKED_MESSAGE
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_plaintext_backends_are_refused(monkeypatch):
    from keyring.backends import null

    monkeypatch.setattr(secrets, "_backend", lambda: null.Keyring())
    assert secrets.keyring_status().message == secrets.NO_BACKEND_MESSAGE
    with pytest.raises(secrets.KeyringUnavailableError):
        secrets.get_secret("anything")


def test_mask_shows_at_most_the_last_four_characters():
    key = "tgp_0123456789abcdef0123"
    masked = secrets.mask(key)
    assert masked.endswith("0123") and key[:-4] not in masked
    assert secrets.mask("short") == "•" * 8
    assert secrets.mask(None) == ""
