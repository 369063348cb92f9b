"""The Playground tab: try the trained twin (its own issue fills it)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from .placeholder import PlaceholderTab

DESCRIPTION = (
    "This tab will let you try your trained twin: type or paste a conversation and see its "
    "style signature, the probability of each of the 12 conversational patterns, and the plan "
    "steps it predicts for the next turns, side by side for different runs.\n\n"
    "It is not available in this build yet."
)


class PlaygroundTab(PlaceholderTab):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Playground: try your twin", DESCRIPTION, parent)
