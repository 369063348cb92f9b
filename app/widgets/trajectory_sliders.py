"""The message's trajectory (5 coordinates in [0, 1] and the phase), editable with sliders.

`set_trajectory(...)` shows a message's own values without emitting; a user's edit emits
`edited(coordinates, phase_id)`. Moving depth moves the phase along with it (the phase
follows from depth, docs/data-and-model.md) unless the user has picked a phase by hand; Reset brings
back the message's own values.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QPushButton, QSlider, QWidget

from app.widgets.trajectory_style import COORDINATE_LABELS, COORDINATE_TERMS
from cognitivetwin_core.annotation.trajectory import PHASE_NAMES, phase_for_depth

_STEPS = 100  # slider resolution: 0.01


class TrajectorySliders(QWidget):
    edited = Signal(tuple, int)  # (5 coordinates), phase_id

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._original: tuple[tuple[float, ...], int] = ((0.0, 0.33, 1.0, 0.0, 0.5), 0)
        self._phase_by_hand = False
        self._updating = False
        # Exact values: a slider only holds 0.01 steps, and an untouched coordinate must
        # reach the model as the message's own value, not its rounded slider position.
        self._values: list[float] = list(self._original[0])
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.sliders: list[QSlider] = []
        self.value_labels: list[QLabel] = []
        for row, (label, term) in enumerate(zip(COORDINATE_LABELS, COORDINATE_TERMS)):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(0, _STEPS)
            slider.setObjectName(f"trajectory-{term.replace(' ', '-')}")
            slider.setAccessibleName(label)
            value_label = QLabel("0.00")
            value_label.setMinimumWidth(32)
            slider.valueChanged.connect(lambda _value, index=row: self._slider_moved(index))
            name = QLabel(label)
            name.setProperty("glossary", term)  # the exact term and its meaning in the tooltip
            layout.addWidget(name, row, 0)
            layout.addWidget(slider, row, 1)
            layout.addWidget(value_label, row, 2)
            self.sliders.append(slider)
            self.value_labels.append(value_label)
        self.phase_combo = QComboBox()
        for phase_id, name in enumerate(PHASE_NAMES):
            self.phase_combo.addItem(f"{phase_id} {name}", phase_id)
        self.phase_combo.activated.connect(self._phase_picked)
        self.reset_button = QPushButton("Reset to the message's own")
        self.reset_button.clicked.connect(self.reset)
        row = len(COORDINATE_LABELS)
        layout.addWidget(QLabel("phase"), row, 0)
        layout.addWidget(self.phase_combo, row, 1, 1, 2)
        layout.addWidget(self.reset_button, row + 1, 1, 1, 2)
        self.set_trajectory(*self._original)

    def set_trajectory(self, coordinates: Sequence[float], phase_id: int) -> None:
        """Show a message's own trajectory (no `edited` signal)."""
        self._original = (tuple(float(c) for c in coordinates), int(phase_id))
        self._phase_by_hand = False
        self._show(*self._original)

    def _show(self, coordinates: Sequence[float], phase_id: int) -> None:
        self._values = [float(c) for c in coordinates]
        self._updating = True
        try:
            for slider, label, value in zip(self.sliders, self.value_labels, coordinates):
                slider.setValue(round(min(1.0, max(0.0, value)) * _STEPS))
                label.setText(f"{value:.2f}")
            self.phase_combo.setCurrentIndex(max(0, min(len(PHASE_NAMES) - 1, phase_id)))
        finally:
            self._updating = False

    def coordinates(self) -> tuple[float, float, float, float, float]:
        return tuple(self._values)  # type: ignore[return-value]

    def phase_id(self) -> int:
        return int(self.phase_combo.currentData())

    def is_edited(self) -> bool:
        original, phase = self._original
        return tuple(self._values) != original or self.phase_id() != phase

    def set_coordinate(self, index: int, value: float) -> None:
        """Move one slider as a user would (emits `edited`)."""
        self.sliders[index].setValue(round(value * _STEPS))

    def reset(self) -> None:
        self._phase_by_hand = False
        self._show(*self._original)
        self.edited.emit(self.coordinates(), self.phase_id())

    def _slider_moved(self, index: int) -> None:
        if self._updating:
            return
        self._values[index] = self.sliders[index].value() / _STEPS
        self.value_labels[index].setText(f"{self._values[index]:.2f}")
        if index == 0 and not self._phase_by_hand:
            self._updating = True
            self.phase_combo.setCurrentIndex(phase_for_depth(self._values[0]))
            self._updating = False
        self.edited.emit(self.coordinates(), self.phase_id())

    def _phase_picked(self, _index: int) -> None:
        self._phase_by_hand = True
        self.edited.emit(self.coordinates(), self.phase_id())
