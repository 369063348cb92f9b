"""Help ▸ Guide: the offline guide (resources/guide/guide.html, with the app's own screenshots
made by packaging/update_guide.py) in a QTextBrowser, and the glossary appended from
`cognitivetwin_core.glossary`, so the words the tooltips explain are explained the same way here.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from cognitivetwin_core.glossary import TERMS
from cognitivetwin_core.paths import resources_dir

GLOSSARY_MARK = "<!-- glossary -->"


def guide_dir():
    return resources_dir() / "guide"


def glossary_html() -> str:
    rows = "".join(
        f"<tr><td valign='top'><b>{escape(term.name)}</b></td><td>{escape(term.meaning)}</td></tr>"
        for term in sorted(TERMS, key=lambda t: t.name.casefold())
    )
    return f"<table cellspacing='0' cellpadding='4'>{rows}</table>"


def guide_html() -> str:
    """The guide's HTML with the glossary filled in."""
    text = (guide_dir() / "guide.html").read_text(encoding="utf-8")
    return text.replace(GLOSSARY_MARK, glossary_html())


class GuideDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("CognitiveTwin Studio: Guide")
        self.resize(900, 760)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.browser.setSearchPaths([str(guide_dir())])
        # The base URL makes <img src="start.png"> resolve inside resources/guide/.
        self.browser.document().setBaseUrl(QUrl.fromLocalFile(str(guide_dir()) + "/"))
        self.browser.setHtml(guide_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
