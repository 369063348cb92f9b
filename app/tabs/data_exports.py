"""The Data tab's exports: Together JSONL for Phase 1 (with its personal-data choice) and
trajectory JSONL for Phase 2, the personal-data check and token counts for the chosen base (see
data_tab.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from app.tabs import data_jobs


class DataExports:
    """Exports for Phase 1 and Phase 2, the personal-data check and token counts."""

    def _choose_export(self, which: str) -> None:
        default = str(Path.home() / ("phase1_together.jsonl" if which == "phase1" else "phase2_trajectories.jsonl"))
        path, _ = QFileDialog.getSaveFileName(
            self, "Export for Phase 1" if which == "phase1" else "Export for Phase 2", default, "JSON Lines (*.jsonl)"
        )
        if path:
            self.export(which, path)

    def export(self, which: str, path: str | Path) -> bool:
        label = "Phase 1 (Together JSONL)" if which == "phase1" else "Phase 2 (trajectory JSONL)"
        return self._start(
            "export",
            f"Exporting for {label}…",
            data_jobs.run_export,
            self.workspace.path if self.workspace else None,
            which,
            Path(path),
            self.base_model,
            0.1 if self.validation_box.isChecked() else 0.0,
            self.privacy_choice.currentData() if which == "phase1" else "keep",
        )

    def check_privacy(self) -> bool:
        return self._start(
            "privacy",
            "Checking the messages for personal data…",
            data_jobs.run_privacy_check,
            self.workspace.path if self.workspace else None,
        )

    def count_tokens(self) -> bool:
        return self._start(
            "tokens",
            f"Counting tokens with the {self.base_model} tokenizer…",
            data_jobs.run_token_count,
            self.workspace.path if self.workspace else None,
            self.base_model,
        )
