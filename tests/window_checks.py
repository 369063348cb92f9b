"""What a person would stumble on in a window, checked on every visible widget of a tab:
text cut off (a label whose text is wider or taller than the label, a button narrower than
its text) and words that are the program's, not the person's (a raw role name, a hex id, a
command-line flag, a path of the test machine)."""

from __future__ import annotations

import re

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QGroupBox,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QTreeView,
    QWidget,
)

# A role used as a label ("user (context)", "#0 assistant: …", "the user role"), not the
# word inside a person's own message.
RAW_ROLE = re.compile(r"(?<![\w-])(assistant|user)(?=\s*[:(]|\s+role\b|'s\b)", re.IGNORECASE)
HEX_ID = re.compile(r"(?<![\w-])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{10,}(?![\w])")
CLI_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
# A table cell that is nothing but a role ("user" in a Role column): never a person's message,
# whose text is longer than one word of the program's.
BARE_ROLE = re.compile(r"^\s*(assistant|user|system|tool)\s*$", re.IGNORECASE)
SLACK_PX = 2  # rounding of font metrics


def plain(label: QLabel) -> str:
    text = label.text()
    if label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text)
    ):
        document = QTextDocument()
        document.setHtml(text)
        return document.toPlainText()
    return text


def _shown(widget: QWidget, root: QWidget) -> bool:
    return widget.isVisibleTo(root) and widget.window() is root.window() and widget.width() > 0


def _clipped_label(label: QLabel) -> str | None:
    text = plain(label)
    if not text.strip() or label.pixmap() is not None and not label.pixmap().isNull():
        return None
    inner = label.contentsRect()
    margin = 2 * label.margin() + 2 * max(0, label.indent())
    if label.wordWrap():
        needed = label.heightForWidth(label.width())
        if needed > label.height() + SLACK_PX:
            return f"needs {needed} px of height, has {label.height()}"
        # One word longer than the width cannot wrap.
        metrics = label.fontMetrics()
        widest = max((metrics.horizontalAdvance(word) for word in text.split()), default=0)
        if widest > inner.width() - margin + SLACK_PX:
            return f"a word needs {widest} px, the label is {inner.width()} wide"
        return None
    metrics = label.fontMetrics()
    widest = max(metrics.horizontalAdvance(line) for line in text.splitlines() or [""])
    if widest > inner.width() - margin + SLACK_PX:
        return f"needs {widest} px of width, has {inner.width()}"
    return None


def _texts(root: QWidget):
    """(where, text) of every visible label, button, group title and item view cell."""
    for label in root.findChildren(QLabel):
        if _shown(label, root):
            yield f"label {label.objectName() or plain(label)[:40]!r}", plain(label), label
    for button in root.findChildren(QAbstractButton):
        if _shown(button, root):
            yield f"button {button.text()!r}", button.text(), button
    for group in root.findChildren(QGroupBox):
        if _shown(group, root):
            yield f"group {group.title()!r}", group.title(), group
    for edit in root.findChildren(QPlainTextEdit):
        if _shown(edit, root) and edit.isReadOnly():  # logs and reports the app writes
            yield "text", edit.toPlainText(), edit
    for view in root.findChildren(QAbstractItemView):
        model = view.model()
        if not _shown(view, root) or model is None:
            continue
        root_index = QModelIndex()
        try:
            columns = model.columnCount(root_index)
        except TypeError:  # a list model: one column
            columns = 1
        yield from _cells(view, model, root_index, columns)
        for column in range(columns):
            value = model.headerData(column, Qt.Orientation.Horizontal, Qt.ItemDataRole.DisplayRole)
            if isinstance(value, str):
                yield f"{type(view).__name__} header {column}", value, view


def _cells(view, model, parent: QModelIndex, columns: int, depth: int = 0):
    """(where, text, view) of the cells under `parent`, a tree's children too (50 rows a level)."""
    rows = model.rowCount(parent)
    for row in range(min(rows, 50)):
        for column in range(columns):
            value = model.data(model.index(row, column, parent), Qt.ItemDataRole.DisplayRole)
            if isinstance(value, str):
                yield f"{type(view).__name__} cell ({depth}:{row}, {column})", value, view
        if depth < 2 and isinstance(view, QTreeView):  # flat models may not check their parent
            yield from _cells(view, model, model.index(row, 0, parent), columns, depth + 1)


def stumbles(root: QWidget, machine_paths: tuple[str, ...] = ()) -> list[str]:
    """Every problem found under `root`, one sentence each (empty: nothing to stumble on)."""
    found = []
    for label in root.findChildren(QLabel):
        if _shown(label, root):
            why = _clipped_label(label)
            if why:
                found.append(f"cut off: label {plain(label)[:60]!r} {why}")
    for button in root.findChildren(QAbstractButton):
        if _shown(button, root) and button.text() and button.sizeHint().width() > button.width() + SLACK_PX:
            found.append(
                f"cut off: button {button.text()!r} needs {button.sizeHint().width()} px, has {button.width()}"
            )
    # A tab wider than the window scrolls sideways: what is on its right is hidden.
    for area in root.findChildren(QScrollArea):
        bar = area.horizontalScrollBar()
        if _shown(area, root) and bar.isVisible() and type(area).__name__ == "_FitScrollArea":
            found.append(f"the tab is wider than the window: {bar.maximum()} px are scrolled out of sight")
    for where, text, _widget in _texts(root):
        for pattern, what in ((RAW_ROLE, "a raw role name"), (HEX_ID, "a hex id"), (CLI_FLAG, "a command-line flag")):
            match = pattern.search(text)
            if match:
                found.append(f"{what} {match.group(0)!r} in {where}: {text[:80]!r}")
        if " cell (" in where and BARE_ROLE.match(text):
            found.append(f"a raw role name {text.strip()!r} in {where}")
        for path in machine_paths:
            if path and path in text:
                found.append(f"a path of this machine in {where}: {text[:80]!r}")
    return found


SIZES = ((1200, 800), (1000, 680))


def machine_paths(isolated_user_dirs) -> tuple[str, ...]:
    import tempfile
    from pathlib import Path

    return (str(isolated_user_dirs), tempfile.gettempdir() + "/", str(Path.home()) + "/")


def check_window(window, qtbot, folder, step: str, paths) -> list[str]:
    """Each size in turn: the window photographed, and what a person would stumble on."""
    problems = []
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        window.resize(width, height)
        qtbot.waitUntil(lambda w=width, h=height: window.width() == w and window.height() == h, timeout=5_000)
        qtbot.wait(50)  # the layouts settle (a queued fit of the scroll areas)
        found = dict.fromkeys(stumbles(window, paths))  # a widget seen twice is one problem
        if found:  # a busy machine may not have run the queued layout passes yet: look again
            qtbot.wait(500)
            found = dict.fromkeys(stumbles(window, paths))
        assert window.grab().save(str(folder / f"{step}_{width}x{height}.png"))
        problems += [f"{step} at {width}×{height}: {problem}" for problem in found]
    return problems
