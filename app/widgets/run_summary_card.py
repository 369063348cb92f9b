"""The end of a Phase 2 run in one card: did each head beat its baseline, the outcome, and
where the model was saved. `HEAD_METRICS` names the heads' metrics for the tab's plots too."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

HEAD_COLORS = {
    "total": (20, 20, 20),
    "style": (230, 119, 0),
    "stylometric": (190, 75, 219),
    "pattern": (28, 126, 214),
    "planning": (47, 158, 68),
}
# (metric, its baseline, label, what the baseline is, colour)
HEAD_METRICS = [
    (
        "pattern_macro_f1",
        "pattern_macro_f1_baseline",
        "Patterns: macro F1",
        "predicting the training prior",
        HEAD_COLORS["pattern"],
    ),
    (
        "planning_cosine",
        "planning_cosine_baseline",
        "Planning: cosine to the next turns",
        "copying the current turn",
        HEAD_COLORS["planning"],
    ),
    ("style_retrieval", "style_retrieval_chance", "Style: same-author retrieval", "chance", HEAD_COLORS["style"]),
]


class SummaryCard(QFrame):
    """The end of a run: each head against its baseline, the outcome, where the model is."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("phase2Summary")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            "QFrame#phase2Summary { background: #f8f9fb; border: 1px solid #d0d5dd; border-radius: 6px; }"
        )
        layout = QVBoxLayout(self)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.heads = QLabel()
        self.heads.setTextFormat(Qt.TextFormat.RichText)
        self.location = QLabel()
        self.location.setWordWrap(True)
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for widget in (self.title, self.heads, self.location):
            layout.addWidget(widget)
        self.verdicts: dict[str, bool | None] = {}
        self.hide()

    def show_result(self, finished) -> None:
        outcome = finished.outcome
        self.title.setText(
            {
                "completed": "Training completed",
                "stopped": "Training stopped",
                "cancelled": "Training cancelled",
                "failed": "Training failed",
            }.get(outcome, outcome)
        )
        rows = []
        self.verdicts = {}
        metrics = finished.metrics or {}
        for key, baseline_key, label, baseline_text, _color in HEAD_METRICS:
            value, baseline = metrics.get(key), metrics.get(baseline_key)
            if value is None or baseline is None:
                self.verdicts[key] = None
                continue
            beat = value > baseline
            self.verdicts[key] = beat
            mark = (
                "<span style='color:#2b8a3e'>✔ beat its baseline</span>"
                if beat
                else "<span style='color:#c92a2a'>✘ did not beat its baseline</span>"
            )
            rows.append(f"{label}: <b>{value:.3f}</b> vs {baseline:.3f} ({baseline_text}) — {mark}")
        self.heads.setText(
            "<br>".join(rows) if rows else "No validation metrics (no epoch finished, or no validation data)."
        )
        saved = (
            outcome in ("completed", "stopped")
            and finished.output_dir
            and (Path(finished.output_dir) / "model.safetensors").is_file()
        )
        where = f"Model saved in {finished.output_dir}" if saved else "No model was saved."
        self.location.setText(f"{finished.message}\n{where}")
        self.show()
