"""Unexpected errors: logged in full, then shown in a dialog with details and the log path.

Errors a user can fix (`CognitiveTwinError`) are not for this dialog: each tab shows those
inline. `install_excepthook()` routes uncaught exceptions (slots, virtual methods, asyncio
tasks through `app.qt.tasks`) here. The dialog is opened with `open()`, never `exec()`, so
it cannot block the qasync loop (docs/qt.md §11); tests patch `ErrorDialog.show_error`.
"""

from __future__ import annotations

import logging
import sys
import traceback

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.logging_setup import log_file_path, redact

log = logging.getLogger(__name__)

_open_dialogs: list[QMessageBox] = []


class ErrorDialog(QMessageBox):
    def __init__(self, summary: str, details: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Critical)
        self.setWindowTitle("CognitiveTwin Studio: something went wrong")
        self.setText(summary)
        self.setInformativeText(
            f"This is a bug, not something you did. The full report is in the log file:\n{log_file_path()}"
        )
        # Redacted again: a key must not reach the screen (or a screenshot) either.
        self.setDetailedText(redact(details))
        self.setStandardButtons(QMessageBox.StandardButton.Close)

    @classmethod
    def show_error(cls, summary: str, details: str) -> ErrorDialog | None:
        if QApplication.instance() is None:
            return None
        parent = QApplication.activeWindow()
        dialog = cls(summary, details, parent)
        _open_dialogs.append(dialog)
        dialog.finished.connect(lambda _result, d=dialog: _open_dialogs.remove(d) if d in _open_dialogs else None)
        dialog.open()
        return dialog


def report_unexpected(exc: BaseException, *, context: str = "") -> None:
    """Log `exc` with its traceback and show it; user-fixable errors are only logged."""
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, CognitiveTwinError):
        log.warning("unhandled user error%s: %s", f" in {context}" if context else "", exc)
        summary = str(exc)
    else:
        log.error(
            "unexpected error%s", f" in {context}" if context else "", exc_info=(type(exc), exc, exc.__traceback__)
        )
        summary = f"An unexpected error stopped {context or 'an operation'}: {type(exc).__name__}: {exc}"
    ErrorDialog.show_error(redact(summary), details)


def _excepthook(exc_type, exc, tb) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    if exc.__traceback__ is None:
        exc = exc.with_traceback(tb)
    report_unexpected(exc)


def _asyncio_handler(loop, context: dict) -> None:
    exc = context.get("exception")
    if exc is None:
        log.error("asyncio: %s", context.get("message"))
        return
    report_unexpected(exc, context=context.get("message", "the event loop"))


def install_excepthook(loop=None) -> None:
    sys.excepthook = _excepthook
    if loop is not None:
        loop.set_exception_handler(_asyncio_handler)
