"""The device choice for training on this computer: Auto, CPU, a CUDA GPU, Apple's GPU.

Its values are what `cognitivetwin_core.models.devices.select_device` takes (the CLI's
`--device`), so the app and the CLI choose alike.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QWidget

DEVICE_ITEMS = (
    ("Auto (a GPU when there is one)", "auto"),
    ("CPU", "cpu"),
    ("CUDA GPU", "cuda"),
    ("Apple GPU (MPS)", "mps"),
)


class DevicePicker(QComboBox):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        for label, value in DEVICE_ITEMS:
            self.addItem(label, value)
        self.setToolTip("Where training runs. Auto takes a CUDA GPU, then Apple's GPU, then the CPU.")

    def device(self) -> str:
        return str(self.currentData() or "auto")

    def set_device(self, value: str) -> None:
        index = self.findData(value)
        if index >= 0:
            self.setCurrentIndex(index)
