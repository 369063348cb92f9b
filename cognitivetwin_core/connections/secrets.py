"""API keys in the OS keyring, and nowhere else.

Every key lives under one keyring service, ``SERVICE_NAME`` ("CognitiveTwin Studio"), with
the entry names below (``TOGETHER_API_KEY``...). Where no keyring works (no Secret Service
on Linux, a locked collection whose unlock prompt was dismissed, a plaintext-file backend
from ``keyrings.alt``), every call raises ``KeyringUnavailableError`` with a plain
explanation and nothing is stored: there is deliberately no fallback to files.

Every value read or written is registered with ``logging_setup.register_secret`` so it is
redacted from every log line. Keyring calls can block on an unlock prompt: the app calls
them off the GUI thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.logging_setup import register_secret

log = logging.getLogger(__name__)

SERVICE_NAME = "CognitiveTwin Studio"

# Entry names under SERVICE_NAME.
TOGETHER_API_KEY = "together_api_key"
SUPABASE_URL = "supabase_url"
SUPABASE_KEY = "supabase_key"
HUGGINGFACE_TOKEN = "huggingface_token"  # reads gated bases (Llama, Gemma) from the Hub
KNOWN_SECRETS = (TOGETHER_API_KEY, SUPABASE_URL, SUPABASE_KEY, HUGGINGFACE_TOKEN)

_PROBE_ENTRY = "__availability_probe__"
# Backends that "work" by writing secrets to a file or by dropping them: never acceptable.
_REFUSED_BACKEND_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")

NO_BACKEND_MESSAGE = (
    "No system keyring is available, so keys cannot be saved. "
    "On Linux install a Secret Service provider (GNOME Keyring: `sudo apt install gnome-keyring`, "
    "or KeePassXC with its Secret Service integration on) and run the app inside your desktop "
    "session; Windows and macOS use their built-in keychain. "
    "CognitiveTwin never saves keys anywhere else."
)
LOCKED_MESSAGE = (
    "The system keyring is locked (its unlock prompt was dismissed or could not be shown). "
    "Unlock it (log in to your desktop session, or open your keyring app such as "
    "'Passwords and Keys') and try again. CognitiveTwin never saves keys anywhere else."
)


class KeyringUnavailableError(CognitiveTwinError):
    """No usable OS keyring: the message says why and what to install or unlock."""


@dataclass(frozen=True)
class KeyringStatus:
    available: bool
    message: str  # "" when available; otherwise a plain explanation with what to do
    backend_name: str  # e.g. "SecretService Keyring", for display


def _backend():
    import keyring

    return keyring.get_keyring()


def _backend_name(backend) -> str:
    return getattr(backend, "name", type(backend).__name__)


def _is_refused(backend) -> bool:
    from keyring.backends.chainer import ChainerBackend

    if isinstance(backend, ChainerBackend):
        chained = list(backend.backends)
        return not chained or all(_is_refused(b) for b in chained)
    return type(backend).__module__.startswith(_REFUSED_BACKEND_MODULES)


def _explain(exc: Exception) -> str:
    """Turn a keyring exception into a plain sentence (never containing a key)."""
    from keyring.errors import InitError, KeyringLocked, NoKeyringError

    text = str(exc)
    if isinstance(exc, KeyringLocked) or "Prompt dismissed" in text or "locked" in text.lower():
        return LOCKED_MESSAGE
    if isinstance(exc, NoKeyringError):
        return NO_BACKEND_MESSAGE
    if isinstance(exc, InitError):
        return f"The system keyring could not be opened ({text.rstrip('.')}). " + LOCKED_MESSAGE
    return (
        f"The system keyring failed ({type(exc).__name__}: {text.rstrip('.')}). "
        "Check that your keyring service is running and unlocked, then try again. "
        "CognitiveTwin never saves keys anywhere else."
    )


def _usable_backend():
    backend = _backend()
    if _is_refused(backend):
        raise KeyringUnavailableError(NO_BACKEND_MESSAGE)
    return backend


def keyring_status() -> KeyringStatus:
    """Whether keys can be stored, found with a read-only probe of the real keyring."""
    try:
        backend = _backend()
    except Exception as exc:  # a broken keyring configuration file, a backend import error
        return KeyringStatus(False, _explain(exc), "none")
    name = _backend_name(backend)
    if _is_refused(backend):
        return KeyringStatus(False, NO_BACKEND_MESSAGE, name)
    try:
        # Reading opens (or creates) the default collection: this is what fails when the
        # keyring is locked or its creation prompt was dismissed.
        backend.get_password(SERVICE_NAME, _PROBE_ENTRY)
    except Exception as exc:
        log.info("keyring %s unusable: %s", name, type(exc).__name__)
        return KeyringStatus(False, _explain(exc), name)
    return KeyringStatus(True, "", name)


def _check_name(name: str) -> None:
    if not name or not isinstance(name, str):
        raise ValueError("a secret needs a non-empty name")


def get_secret(name: str) -> str | None:
    """The stored value of `name`, or None when nothing is stored."""
    _check_name(name)
    backend = _usable_backend()
    try:
        value = backend.get_password(SERVICE_NAME, name)
    except Exception as exc:
        raise KeyringUnavailableError(_explain(exc)) from None
    register_secret(value)
    return value


def set_secret(name: str, value: str) -> None:
    """Store (or replace) `value` under `name`. Empty values are refused: use delete_secret."""
    _check_name(name)
    if not value or not value.strip():
        raise CognitiveTwinError(f"The value for {name} is empty: paste it again, or remove it instead.")
    value = value.strip()
    register_secret(value)
    backend = _usable_backend()
    try:
        backend.set_password(SERVICE_NAME, name, value)
    except Exception as exc:
        # `from None`: the keyring exception's context must not carry the value along.
        raise KeyringUnavailableError(_explain(exc)) from None
    log.info("stored %s in the %s", name, _backend_name(backend))


def delete_secret(name: str) -> bool:
    """Remove `name`; True when something was removed, False when nothing was stored."""
    from keyring.errors import PasswordDeleteError

    _check_name(name)
    backend = _usable_backend()
    try:
        backend.delete_password(SERVICE_NAME, name)
    except PasswordDeleteError:
        return False
    except Exception as exc:
        raise KeyringUnavailableError(_explain(exc)) from None
    log.info("removed %s from the %s", name, _backend_name(backend))
    return True


def huggingface_token() -> str | None:
    """The Hugging Face Hub token: `HF_TOKEN` from the environment, else the keyring's entry.

    None when neither has one (public bases download without a token); a keyring that does
    not work counts as none here, since a token is optional.
    """
    import os

    value = (os.environ.get("HF_TOKEN") or "").strip()
    if value:
        register_secret(value)
        return value
    try:
        return get_secret(HUGGINGFACE_TOKEN)
    except KeyringUnavailableError:
        return None


def mask(value: str | None) -> str:
    """How a stored key is shown again: its length hinted, at most its last 4 characters."""
    if not value:
        return ""
    if len(value) < 12:
        return "•" * 8
    return "•" * 8 + value[-4:]
