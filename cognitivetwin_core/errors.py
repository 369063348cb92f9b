"""Errors a user can fix. Their message is one plain sentence saying what and what to do.

The CLI prints the message alone (no traceback) and exits non-zero; the app shows it
inline in the tab that caused it. Anything else is unexpected and is logged in full.
"""


class CognitiveTwinError(Exception):
    """Base of every error whose message is meant for the user."""

    exit_code = 1


class InputError(CognitiveTwinError):
    """Bad input: a file, record or field the user can correct."""

    exit_code = 2


class CancelledError(CognitiveTwinError):
    """The user cancelled a long operation."""

    exit_code = 130
