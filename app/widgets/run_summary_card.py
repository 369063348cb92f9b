"""The end of a Phase 2 run in one card: which epoch was kept, each head's verdict in words
against its baseline, overfitting, what the position in the conversation adds (the
trajectory ablation), the outcome and where the model was saved. The sentences come from
the core (`phase2.verdicts.summarize_run`, reading the run's metrics.json). `HEAD_METRICS`
names the heads' metrics for the tab's plots too."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

BODY_MAX_HEIGHT = 190  # px: the verdicts scroll past this (the plots above keep their room)
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
        "Patterns: pattern accuracy (0 to 1)",
        "predicting the training prior",
        HEAD_COLORS["pattern"],
    ),
    (
        "planning_cosine",
        "planning_cosine_baseline",
        "Planning: closeness to the next turns (-1 to 1)",
        "copying the current turn",
        HEAD_COLORS["planning"],
    ),
    (
        "style_retrieval",
        "style_retrieval_chance",
        "Style: finding your own messages (0 to 1)",
        "chance",
        HEAD_COLORS["style"],
    ),
]


def without_run_folder(message: str, output_dir) -> str:
    """The core's end-of-run sentence without the run folder's path (the path goes into a
    tooltip): "The model is in /…/runs/x." reads "The model is saved"."""
    if not output_dir:
        return message
    folder = str(output_dir)
    return (
        message.replace(f" is in {folder}", " is saved").replace(f" in {folder}", "").replace(folder, "its run folder")
    )


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
        self.heads.setWordWrap(True)  # unwrapped verdict lines made the Phase 2 tab wider than the window
        self.location = QLabel()
        self.location.setWordWrap(True)
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QLabel()
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setWordWrap(True)
        layout.addWidget(self.title)
        # The verdicts and details scroll within a bounded height: cut mid-line at the default
        # window size they could not be read, and a taller card squeezed the plots' legends.
        body = QWidget()
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.heads, self.details, self.location):
            body_layout.addWidget(widget)
        body_layout.addStretch(1)
        self.body_area = QScrollArea()
        self.body_area.setWidget(body)
        self.body_area.setWidgetResizable(True)
        self.body_area.setFrameShape(QFrame.Shape.NoFrame)
        self.body_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.body_area.setMaximumHeight(BODY_MAX_HEIGHT)
        layout.addWidget(self.body_area)
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
        from cognitivetwin_core.phase2.runs import METRICS_FILE, read_json
        from cognitivetwin_core.phase2.verdicts import UNCLEAR, head_verdicts, summarize_run

        summary = summarize_run(read_json(Path(finished.output_dir) / METRICS_FILE) if finished.output_dir else None)
        self.summary = summary
        rows = []
        self.verdicts = {}
        metrics = finished.metrics or {}
        words = {v.key: v for v in head_verdicts(metrics)}
        for key, baseline_key, label, baseline_text, _color in HEAD_METRICS:
            value, baseline = metrics.get(key), metrics.get(baseline_key)
            if value is None or baseline is None:
                self.verdicts[key] = None
                continue
            verdict = words[key]
            self.verdicts[key] = verdict.beats_baseline
            # Green only for a gain whose interval excludes zero; grey when it is not clear either way.
            unclear = verdict.level == UNCLEAR
            color = "#2b8a3e" if verdict.beats_baseline else "#667085" if unclear else "#c92a2a"
            mark = "✔" if verdict.beats_baseline else "–" if unclear else "✘"
            rows.append(
                f"<span style='color:{color}'>{mark} {html.escape(verdict.sentence)}</span> "
                f"<span style='color:#667085'>({label.split(': ')[-1]}: <b>{value:.3f}</b> vs {baseline:.3f}, "
                f"{baseline_text})</span>"
            )
        if summary.best_epoch is not None and rows:
            rows.insert(
                0, f"The model kept is epoch <b>{summary.best_epoch}</b> of {summary.epochs}, the best on validation."
            )
        self.heads.setText(
            "<br>".join(rows) if rows else "No validation metrics (no epoch finished, or no validation data)."
        )
        details = [f"<span style='color:#c92a2a'>⚠ {html.escape(w)}</span>" for w in summary.warnings]
        details += [html.escape(n) for n in summary.notes]
        if summary.plan_steps:
            details.append("Planning, step by step (how close each step comes to the real turn):")
            details += [f"&nbsp;&nbsp;{html.escape(line)}" for line in summary.plan_steps]
        if summary.ablation:
            details.append("Does the position in the conversation matter? (the same messages with positions shuffled)")
            details += [f"&nbsp;&nbsp;{html.escape(line)}" for line in summary.ablation]
        self.details.setText("<br>".join(details))
        self.details.setVisible(bool(details))
        saved = (
            outcome in ("completed", "stopped")
            and finished.output_dir
            and (Path(finished.output_dir) / "model.safetensors").is_file()
        )
        where = "It is kept with the workspace's runs (the Runs tab; its folder in the tooltip)." if saved else ""
        self.location.setText(f"{without_run_folder(finished.message, finished.output_dir)} {where}".strip())
        self.location.setToolTip(f"The run's folder: {finished.output_dir}" if finished.output_dir else "")
        self.show()
