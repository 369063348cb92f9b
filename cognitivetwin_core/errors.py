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


def shown_path(path) -> str:
    """A path as text for a message: bytes of a file name that are not UTF-8 shown as \\xNN."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_disk_failure(exc: BaseException) -> bool:
    """A full, over-quota, read-only or failing disk: the user's to fix, not a bug."""
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


def reported_os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc`: itself, or one a library only reported in its message, as
    safetensors' writer does ("I/O error: No space left on device (os error 28)")."""
    import os
    import re

    if isinstance(exc, OSError):
        return exc
    match = re.search(r"\(os error (\d+)\)|\bcode: (\d+)\b", str(exc))
    if match is None:
        return None
    number = int(match.group(1) or match.group(2))
    return OSError(number, os.strerror(number))


def os_error(exc: OSError, doing: str, path=None) -> CognitiveTwinError:
    """One sentence for an OSError met while `doing` ("reading", "writing", ...) `path`.

    For the places that touch the user's files (imports, exports, output folders): the
    disk is full, the place is read-only, a path runs through a file, and so on.
    """
    import errno

    where = shown_path(path if path is not None else exc.filename or "the file")
    advice = {
        errno.ENOSPC: "the disk is full; free some space and try again",
        errno.EDQUOT: "the disk quota is used up; free some space and try again",
        errno.EROFS: "that place is read-only; choose a folder you can write to",
        errno.EACCES: "permission denied; choose a place you may use, or change its permissions",
        errno.EPERM: "the operation is not permitted there; choose another place",
        errno.ENOTDIR: "part of the path is a file, not a folder; check the path",
        errno.EISDIR: "it is a folder; give a file name",
        errno.ENOENT: "it does not exist; check the path",
        errno.ENXIO: "it is not a regular file (a socket or device); choose a file",
        errno.ELOOP: "its links form a loop; check the path",
        errno.ENAMETOOLONG: "the name is too long; choose a shorter one",
        errno.EIO: "the disk reported an input/output error; check the disk and try again",
    }.get(exc.errno, f"{exc.strerror or exc}; check the path and try again")
    error = InputError if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.ENXIO) else CognitiveTwinError
    return error(f"Error {doing} {where}: {advice}.")
