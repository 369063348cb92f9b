"""The Phase 2 tab: trajectory adapter and the style, pattern and planning heads (its own issue fills it)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from .placeholder import PlaceholderTab

DESCRIPTION = (
    "This tab will train the second phase of your twin on this computer: small components on "
    "top of the frozen base model and its Phase 1 adapter, which learn your style signature, "
    "your conversational patterns and how you plan the next turns. It will show live loss "
    "curves and per-head metrics for each epoch, let you stop a run at any time, and keep every "
    "run in the workspace so you can compare them.\n\n"
    "It is not available in this build yet."
)


class Phase2Tab(PlaceholderTab):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Phase 2: learn style, patterns and planning", DESCRIPTION, parent)
