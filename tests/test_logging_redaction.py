"""Keys never reach the log file: registered secrets and key-shaped strings are redacted."""

import logging

from cognitivetwin_core import logging_setup


def _read_log(path):
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text()


def test_redaction_patterns():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
    hexkey = "a" * 64
    text = f"url=https://x.supabase.co key {jwt} together {hexkey} Authorization: Bearer tgp_v1_abcdefghijklmnop"
    cleaned = logging_setup.redact(text)
    assert jwt not in cleaned and hexkey not in cleaned and "tgp_v1_abcdefghijklmnop" not in cleaned
    assert "https://x.supabase.co" in cleaned


def test_registered_secret_never_reaches_log_file(isolated_user_dirs):
    secret = "my-very-own-key-42"
    path = logging_setup.configure_logging()
    try:
        logging_setup.register_secret(secret)
        log = logging.getLogger("test.redaction")
        log.warning("connecting with %s", secret)
        try:
            raise RuntimeError(f"server refused {secret}")
        except RuntimeError:
            log.exception("call failed")
        content = _read_log(path)
        assert "connecting with [REDACTED]" in content and "call failed" in content
        assert secret not in content
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "_cognitivetwin", False)]:
            root.removeHandler(handler)
            handler.close()
