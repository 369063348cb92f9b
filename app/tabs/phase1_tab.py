"""The Phase 1 tab: LoRA fine-tuning on Together or locally (its own issue fills it)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from .placeholder import PlaceholderTab

DESCRIPTION = (
    "This tab will train the first phase of your twin: a LoRA fine-tune of the base model on "
    "your conversations. You will pick the base model and the training settings, see the "
    "price estimate, then launch the job on Together AI (using the key from the Connections "
    "tab) or locally on this computer. It will follow the job's progress and events, let you "
    "cancel it, and download the finished adapter into the workspace.\n\n"
    "It is not available in this build yet."
)


class Phase1Tab(PlaceholderTab):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Phase 1: fine-tune the base model", DESCRIPTION, parent)
