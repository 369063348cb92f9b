"""SDK exceptions -> one plain sentence, never with the key in it."""

from __future__ import annotations

import httpx
import pytest
import together

from cognitivetwin_core.logging_setup import register_secret
from cognitivetwin_core.phase1.together_errors import translate

KEY = "tgp_secret_key_for_errors_0123456789abcdef"


def status_error(cls, status: int, body) -> Exception:
    request = httpx.Request("POST", "http://127.0.0.1/v1/fine-tunes")
    response = httpx.Response(status, json=body, request=request)
    return cls(f"Error code: {status} - {body}", response=response, body=body)


def error_body(message: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


@pytest.mark.parametrize(
    "exc, kind, words",
    [
        (status_error(together.AuthenticationError, 401, error_body("bad key")), "auth", "API key"),
        (status_error(together.PermissionDeniedError, 403, error_body("forbidden")), "auth", "API key"),
        (status_error(together.APIStatusError, 402, error_body("Payment required")), "credit", "credit"),
        (
            status_error(together.BadRequestError, 400, error_body("Insufficient balance for this job")),
            "credit",
            "Billing",
        ),
        (status_error(together.RateLimitError, 429, error_body("slow down")), "rate_limit", "wait a minute"),
        (status_error(together.InternalServerError, 503, error_body("overloaded")), "server", "Together's side"),
        (
            status_error(together.NotFoundError, 404, {"message": "model not supported"}),
            "unknown_model",
            "does not fine-tune",
        ),
        (
            status_error(together.BadRequestError, 400, error_body("lora_r must be <= 64")),
            "bad_request",
            "lora_r must be <= 64",
        ),
        (together.APITimeoutError(request=httpx.Request("GET", "http://127.0.0.1/")), "timeout", "in time"),
        (together.APIConnectionError(request=httpx.Request("GET", "http://127.0.0.1/")), "connection", "network"),
        (ValueError("LoRA dropout should be in [0, 1)"), "bad_request", "dropout"),
    ],
)
def test_mapping(exc, kind, words):
    error = translate(exc, action="creating the job", model="meta-llama/Llama-3.2-3B-Instruct")
    assert error.kind == kind
    assert words in str(error)
    assert "\n" not in str(error) and str(error).endswith(".")


def test_not_found_without_a_model_names_the_id_problem():
    error = translate(status_error(together.NotFoundError, 404, error_body("no such job")), action="checking job ft-x")
    assert error.kind == "not_found" and "--list" in str(error)


def test_server_text_quoting_the_key_is_redacted():
    register_secret(KEY)
    exc = status_error(together.BadRequestError, 400, error_body(f"key {KEY} lacks fine-tuning scope"))
    error = translate(exc, action="uploading")
    assert KEY not in str(error) and "fine-tuning scope" in str(error)


def test_long_server_text_is_shortened():
    exc = status_error(together.BadRequestError, 400, error_body("x" * 5000))
    assert len(str(translate(exc, action="uploading"))) < 400
