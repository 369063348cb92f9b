"""Together SDK exceptions turned into one plain sentence a user can act on.

`translate(exc, action=...)` maps any exception the `together` SDK (3.x) raises into a
`TogetherServiceError` (a `CognitiveTwinError`) whose `kind` tells the app which case it is
("auth", "credit", "rate_limit", "server", "timeout", "connection", "unknown_model",
"file_rejected", "not_found", "bad_request", "job_failed", "duplicate"). The message never
contains the API key: server text is redacted and shortened before it is quoted.

Imports of the SDK are lazy so importing this module stays cheap.
"""

from __future__ import annotations

import json

from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.logging_setup import redact

KEYS_HINT = "Check the Together API key (Connections tab, or TOGETHER_API_KEY for the CLI)"


class TogetherServiceError(CognitiveTwinError):
    """A Together call failed; `kind` names the case, `status_code` the HTTP status if any."""

    def __init__(self, message: str, *, kind: str, status_code: int | None = None):
        super().__init__(redact(message))
        self.kind = kind
        self.status_code = status_code


def server_message(exc) -> str:
    """The server's own explanation from an SDK status error, short and redacted ("" if none)."""
    body = getattr(exc, "body", None)
    text = ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            text = str(error.get("message") or "")
        elif isinstance(error, str):
            text = error
        text = text or str(body.get("message") or "")
    elif isinstance(body, str):
        text = body
        try:
            parsed = json.loads(body)
        except (ValueError, TypeError):
            parsed = None
        if isinstance(parsed, dict):
            return server_message(type("B", (), {"body": parsed})())
    text = " ".join(text.split())
    if len(text) > 240:
        text = text[:237] + "..."
    return redact(text)


def _quoted(detail: str) -> str:
    return f" (Together says: {detail.rstrip('.')})" if detail else ""


_CREDIT_WORDS = ("credit", "balance", "billing", "payment", "insufficient funds", "quota")


def translate(exc: BaseException, *, action: str, model: str | None = None) -> CognitiveTwinError:
    """A user-facing error for `exc` raised while `action` (e.g. "uploading the training file")."""
    if isinstance(exc, CognitiveTwinError):
        return exc
    import together

    if isinstance(exc, together.APITimeoutError):
        return TogetherServiceError(
            f"Together did not answer in time while {action}; check your connection and try again "
            "(a job that was being created may exist anyway: run `cognitivetwin phase1 --list`).",
            kind="timeout",
        )
    if isinstance(exc, together.APIConnectionError):
        return TogetherServiceError(
            f"Could not reach Together while {action}; check your network connection (and "
            "TOGETHER_BASE_URL if you set it) and try again.",
            kind="connection",
        )
    if isinstance(exc, together.FileTypeError):
        return TogetherServiceError(
            f"The training file was refused before upload: {redact(str(exc))[:240]}. Export it "
            'again as Phase 1 chat JSONL (one {"messages": [...]} object per line).',
            kind="file_rejected",
        )
    if isinstance(exc, together.APIStatusError):
        status = exc.status_code
        detail = server_message(exc)
        lowered = detail.lower()
        if status == 402 or (status in (400, 403) and any(word in lowered for word in _CREDIT_WORDS)):
            return TogetherServiceError(
                f"Together refused {action} because the account has no credit left{_quoted(detail)}; "
                "add credit under Settings -> Billing on api.together.ai (fine-tuning needs a "
                "minimum balance) and try again.",
                kind="credit",
                status_code=status,
            )
        if status in (401, 403):
            return TogetherServiceError(
                f"Together rejected the API key while {action} (HTTP {status}); {KEYS_HINT} and "
                "make sure it belongs to an account with fine-tuning access.",
                kind="auth",
                status_code=status,
            )
        if status == 429:
            return TogetherServiceError(
                f"Together is rate limiting requests while {action} and retries did not help; "
                "wait a minute and try again.",
                kind="rate_limit",
                status_code=status,
            )
        if status >= 500:
            return TogetherServiceError(
                f"Together had a server error (HTTP {status}) while {action}; this is on "
                "Together's side, try again in a few minutes.",
                kind="server",
                status_code=status,
            )
        if status == 404 and model:
            return TogetherServiceError(
                f"Together does not fine-tune the model {model!r}{_quoted(detail)}; pick another "
                "base model (see `cognitivetwin model list`).",
                kind="unknown_model",
                status_code=status,
            )
        if status == 404:
            return TogetherServiceError(
                f"Together does not know what was asked for while {action}{_quoted(detail)}; "
                "check the job or file id (`cognitivetwin phase1 --list`).",
                kind="not_found",
                status_code=status,
            )
        return TogetherServiceError(
            f"Together refused {action} (HTTP {status}){_quoted(detail)}; fix the setting it names and try again.",
            kind="bad_request",
            status_code=status,
        )
    if isinstance(exc, together.TogetherError):
        return TogetherServiceError(f"Together failed while {action}: {redact(str(exc))[:240]}.", kind="bad_request")
    if isinstance(exc, ValueError):
        # The SDK checks some parameters itself (dropout range, batch size vs. limits...).
        return TogetherServiceError(
            f"A Phase 1 setting was refused while {action}: {redact(str(exc))[:240]}.",
            kind="bad_request",
        )
    return TogetherServiceError(
        f"Unexpected failure while {action}: {type(exc).__name__}: {redact(str(exc))[:240]}.",
        kind="unexpected",
    )
