"""Cheap, real calls that tell a user whether a connection works, in plain words.

- Supabase: a one-row select of the chosen table with supabase-py (the async client).
- Together: list the account's files with the `together` SDK (the async client).

Each check is a coroutine returning a `CheckResult` (never raising for network or
credential problems), so the app awaits it on its qasync loop and the CLI can run it with
`asyncio.run`. No retries: a test button must answer in seconds. Keys never appear in a
result's message.
"""

from __future__ import annotations

import enum
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 10.0
DEFAULT_SUPABASE_TABLE = "memory_turns"
# PostgREST 12 says 42P01, PostgREST 13 (hosted Supabase since late 2025) says PGRST205.
_MISSING_TABLE_CODES = {"42P01", "PGRST205"}
_BAD_JWT_CODES = {"PGRST301", "PGRST302", "PGRST303"}


class CheckStatus(enum.Enum):
    OK = "ok"
    WRONG_KEY = "wrong key"
    WRONG_URL = "wrong URL"
    NO_NETWORK = "no network"
    TABLE_MISSING = "table missing"
    FAILED = "failed"  # anything else: the message says what came back


@dataclass(frozen=True)
class CheckResult:
    status: CheckStatus
    message: str

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.OK


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _network_failure(exc: BaseException, where: str) -> CheckResult:
    """Connection-level failures: an unknown host name reads as a wrong URL, the rest as no network."""
    cause: BaseException | None = exc
    while cause is not None:
        if (
            isinstance(cause, socket.gaierror)
            or "Name or service not known" in str(cause)
            or "nodename nor servname" in str(cause)
        ):
            return CheckResult(
                CheckStatus.WRONG_URL,
                f"The address {where} could not be found. Check the URL for typos, and that you are online.",
            )
        cause = cause.__cause__ or cause.__context__
    if "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower():
        return CheckResult(
            CheckStatus.NO_NETWORK,
            f"{where} did not answer within {CHECK_TIMEOUT_S:.0f} seconds. Check your internet connection and try again.",
        )
    return CheckResult(
        CheckStatus.NO_NETWORK,
        f"Could not connect to {where}. Check your internet connection (and any proxy or firewall), then try again.",
    )


def _is_network_error(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, (httpx.TransportError, OSError))


async def check_supabase(url: str, key: str, table: str = DEFAULT_SUPABASE_TABLE) -> CheckResult:
    """Select one row of `table` at the Supabase project `url` with `key`."""
    import httpx
    from postgrest.exceptions import APIError
    from supabase import AsyncClientOptions, acreate_client

    url = (url or "").strip()
    table = (table or "").strip()
    if not url.startswith(("https://", "http://")):
        return CheckResult(
            CheckStatus.WRONG_URL,
            "The Supabase URL must start with https:// (it looks like https://<project>.supabase.co).",
        )
    if not key:
        return CheckResult(CheckStatus.WRONG_KEY, "No Supabase key is set: paste the project's API key first.")
    if not table:
        return CheckResult(
            CheckStatus.TABLE_MISSING, "No table is set: enter the name of the table that holds the turns."
        )
    host = _host(url)
    statuses: list[int] = []

    async def remember_status(response: httpx.Response) -> None:
        statuses.append(response.status_code)

    http = httpx.AsyncClient(timeout=CHECK_TIMEOUT_S, event_hooks={"response": [remember_status]})
    try:
        options = AsyncClientOptions(
            postgrest_client_retry=False, httpx_client=http, auto_refresh_token=False, persist_session=False
        )
        client = await acreate_client(url, key, options=options)
        await client.table(table).select("*").limit(1).execute()
    except APIError as exc:
        status = statuses[-1] if statuses else None
        code = str(exc.code or "")
        message = str(exc.message or "")
        log.info("supabase check: HTTP %s code %s", status, code)
        if code in _MISSING_TABLE_CODES:
            return CheckResult(
                CheckStatus.TABLE_MISSING,
                f'Connected to {host}, but the table "{table}" does not exist. Check the table name (and that it is in the public schema).',
            )
        if status in (401, 403) or code in _BAD_JWT_CODES or "api key" in message.lower() or "jwt" in message.lower():
            return CheckResult(
                CheckStatus.WRONG_KEY,
                f"{host} refused the key. Copy the project's API key again (Project Settings → API) and save it.",
            )
        if status == 404:
            return CheckResult(
                CheckStatus.WRONG_URL,
                f"{host} answered, but not like a Supabase project. Check the project URL (https://<project>.supabase.co).",
            )
        return CheckResult(
            CheckStatus.FAILED,
            f"Supabase answered with an error (HTTP {status}, {code or 'no code'}): {message or 'no message'}.",
        )
    except Exception as exc:
        if _is_network_error(exc):
            return _network_failure(exc, host)
        if type(exc).__name__ == "SupabaseException":
            return CheckResult(CheckStatus.WRONG_URL, f"The Supabase URL or key is not valid: {exc}.")
        if isinstance(exc, ValueError) and statuses:  # a non-JSON success body: not PostgREST
            return CheckResult(
                CheckStatus.WRONG_URL,
                f"{host} answered, but not like a Supabase project. Check the project URL (https://<project>.supabase.co).",
            )
        raise
    finally:
        await http.aclose()
    return CheckResult(CheckStatus.OK, f'Connected to {host}: the table "{table}" can be read.')


async def check_together(api_key: str, base_url: str | None = None) -> CheckResult:
    """List the account's files on Together (`base_url` defaults to the SDK's: env or api.together.ai)."""
    import together

    if not api_key:
        return CheckResult(CheckStatus.WRONG_KEY, "No Together key is set: paste your API key first.")
    client = together.AsyncTogether(api_key=api_key, base_url=base_url, max_retries=0, timeout=CHECK_TIMEOUT_S)
    host = _host(str(client.base_url))
    try:
        files = await client.files.list()
    except together.AuthenticationError:
        return CheckResult(
            CheckStatus.WRONG_KEY,
            "Together refused the key. Copy it again from api.together.ai → Settings → API keys and save it.",
        )
    except together.PermissionDeniedError:
        return CheckResult(
            CheckStatus.WRONG_KEY,
            "Together accepted the key but denied access to files: check the key's project and permissions.",
        )
    except together.NotFoundError:
        return CheckResult(
            CheckStatus.WRONG_URL, f"{host} answered, but has no Together API there. Check the API address."
        )
    except together.APIConnectionError as exc:
        return _network_failure(exc, host)
    except together.APIStatusError as exc:
        return CheckResult(
            CheckStatus.FAILED, f"Together answered with an error (HTTP {exc.status_code}). Try again later."
        )
    finally:
        await client.close()
    if isinstance(files, str):  # the SDK returns non-JSON success bodies as text
        return CheckResult(
            CheckStatus.WRONG_URL, f"{host} answered, but not like the Together API. Check the API address."
        )
    count = len(getattr(files, "data", None) or [])
    return CheckResult(
        CheckStatus.OK,
        f"Connected to Together: the key works ({count} file{'s' if count != 1 else ''} in the account).",
    )
