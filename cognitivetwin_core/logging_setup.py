"""Logging to a rotating file in the user log dir, with API keys redacted.

Two layers of redaction: known secret values registered at run time (every key read from
the keyring is registered), and patterns that look like keys (JWTs, `sk-`/`tgp_` keys,
long hex tokens, Bearer headers), so a key nobody registered is still caught.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import threading
from pathlib import Path

from cognitivetwin_core.paths import user_log_dir

LOG_FILE_NAME = "cognitivetwin.log"
REDACTED = "[REDACTED]"

_KEY_PATTERNS = [
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT (Supabase keys)
    re.compile(r"\b(?:sk|pk|rk|tgp|sb_secret|sb_publishable)[-_][A-Za-z0-9_-]{16,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"(?i)((?:api[_-]?key|apikey|authorization|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{8,}"),
    re.compile(r"\b[a-f0-9]{40,}\b"),  # long hex tokens (Together keys were 64 hex chars)
]

_known_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Make `value` redacted wherever it would appear in a log record."""
    if value and len(value) >= 4:
        with _lock:
            _known_secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern in _KEY_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts the fully formatted line too (tracebacks, stack info)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def log_file_path() -> Path:
    return user_log_dir() / LOG_FILE_NAME


def configure_logging(level: int = logging.INFO, *, console: bool = False) -> Path:
    """Send the root logger to the rotating log file (idempotent); return the file's path."""
    path = log_file_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_cognitivetwin", False)]
    if any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in ours):
        return path
    # The log dir changed (another workspace of tests, a new COGNITIVETWIN_LOG_DIR): move over.
    for handler in ours:
        root.removeHandler(handler)
        handler.close()
    file_handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handlers: list[logging.Handler] = [file_handler]
    if console:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler._cognitivetwin = True  # type: ignore[attr-defined]
        handler.addFilter(RedactingFilter())
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(min(root.level or level, level))
    # The HTTP clients log full request lines at DEBUG; keep them at WARNING.
    for noisy in ("httpx", "httpcore", "urllib3", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
