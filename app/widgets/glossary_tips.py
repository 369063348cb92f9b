"""Put the glossary's plain meanings (`cognitivetwin_core.glossary`) into the tooltips of every
label, button, check box, group title and table header that shows a technical word.

`apply_glossary(root)` walks `root`'s widgets; the main window calls it each time a tab is
shown, and `install(app)` adds an event filter that refreshes a widget's meanings just before
its tooltip shows (labels change their text as the app runs). A tooltip the app set
itself is kept, with the meanings below it; applying twice changes nothing.

A painted widget with no text of its own (the pattern bars' "✓ rules" marks) names its words
in the Qt property ``glossary``: ``widget.setProperty("glossary", "✓ rules")``.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtWidgets import QAbstractButton, QGroupBox, QHeaderView, QLabel, QTableWidget, QToolTip, QWidget

from cognitivetwin_core.glossary import explain

_BASE = "_glossary_base_tip"  # the tooltip the app set, before the meanings were added
_WRITTEN = "_glossary_written_tip"  # the tooltip this module wrote last


def shown_text(widget: QWidget) -> str:
    """The words a widget shows (its text, title, or declared glossary words)."""
    parts = []
    declared = widget.property("glossary")
    if declared:
        parts.append(str(declared))
    if isinstance(widget, QLabel):
        text = widget.text()
        if widget.textFormat() != Qt.TextFormat.PlainText and GuiQt.mightBeRichText(text):
            from PySide6.QtGui import QTextDocumentFragment

            text = QTextDocumentFragment.fromHtml(text).toPlainText()
        parts.append(text)
    elif isinstance(widget, QAbstractButton):
        parts.append(widget.text().replace("&&", "\0").replace("&", "").replace("\0", "&"))
    elif isinstance(widget, QGroupBox):
        parts.append(widget.title())
    return "\n".join(parts)


def _with_meanings(base: str, meanings: str) -> str:
    if not meanings:
        return base
    if not base:
        return meanings
    if GuiQt.mightBeRichText(base):
        return f"{base}<br><br>{escape(meanings).replace(chr(10), '<br>')}"
    return f"{base}\n\n{meanings}"


def _tip(widget_or_item, meanings: str) -> None:
    """Set `meanings` under the tooltip the app gave (a widget or a QTableWidgetItem)."""
    current = widget_or_item.toolTip()
    if isinstance(widget_or_item, QWidget):
        written = widget_or_item.property(_WRITTEN)
        base = widget_or_item.property(_BASE) if current == written else current
        tip = _with_meanings(base or "", meanings)
        widget_or_item.setProperty(_BASE, base or "")
        widget_or_item.setProperty(_WRITTEN, tip)
    else:  # a table item: its tooltip is only ever this module's or the app's whole one
        base = current.split("\n\n", 1)[0] if meanings and meanings in current else current
        if base == meanings:
            base = ""
        tip = _with_meanings(base, meanings)
    if tip != current:
        widget_or_item.setToolTip(tip)


def header_tooltip(header: QHeaderView, section: int) -> str:
    """The tooltip of a header section (any item view's): the model's own, with the meanings
    of the words its title shows."""
    model = header.model()
    if model is None or section < 0:
        return ""
    title = str(model.headerData(section, header.orientation(), Qt.ItemDataRole.DisplayRole) or "")
    own = model.headerData(section, header.orientation(), Qt.ItemDataRole.ToolTipRole)
    return _with_meanings(str(own or ""), explain(title))


class GlossaryTooltips(QObject):
    """An application-wide event filter: just before a tooltip shows, the widget's meanings
    are computed from the text it shows now (labels change their text as the app runs)."""

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() != QEvent.Type.ToolTip:
            return False
        header = watched.parent() if isinstance(watched, QWidget) else None
        if isinstance(header, QHeaderView) and watched is header.viewport():
            tip = header_tooltip(header, header.logicalIndexAt(event.pos()))
            if tip:
                QToolTip.showText(event.globalPos(), tip, header)
                return True
            return False
        if isinstance(watched, (QLabel, QAbstractButton, QGroupBox)) or (
            isinstance(watched, QWidget) and watched.property("glossary")
        ):
            meanings = explain(shown_text(watched))
            if meanings:
                _tip(watched, meanings)
        return False  # Qt shows the tooltip as usual


def install(app) -> GlossaryTooltips:
    """Install the filter on the application once; returns it (keep a reference)."""
    existing = getattr(app, "_glossary_tooltips", None)
    if existing is None:
        existing = GlossaryTooltips(app)
        app.installEventFilter(existing)
        app._glossary_tooltips = existing
    return existing


def apply_glossary(root: QWidget) -> int:
    """Add the meanings to every widget under (and including) `root`; returns how many got one."""
    count = 0
    for widget in [root, *root.findChildren(QWidget)]:
        if widget is not root and widget.isWindow():
            continue  # a popup (a tooltip's own label, a menu), not part of the page
        meanings = explain(shown_text(widget))
        if meanings:
            _tip(widget, meanings)
            count += 1
        if isinstance(widget, QTableWidget):
            for column in range(widget.columnCount()):
                item = widget.horizontalHeaderItem(column)
                if item is not None:
                    meanings = explain(item.text())
                    if meanings:
                        _tip(item, meanings)
                        count += 1
    return count
