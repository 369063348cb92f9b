"""The Playground tab's runs: the workspace's Phase 2 runs and folders opened by hand, the run last
looked at opened again after a restart, and loading the chosen run when the tab is shown (see
playground_tab.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from app.tabs.playground_controller import RunChoice, model_runs, preferred_run

LAST_RUN_SETTING = "playground/last_run"  # the run last looked at, opened again after a restart


class PlaygroundRuns:
    """The Phase 2 runs to analyse with: the workspace's, a folder opened by hand, the one last
    viewed; loading the chosen one."""

    def refresh_runs(self) -> None:
        current = self.run_combo.currentData()
        self.runs = model_runs(self.workspace) if self.workspace is not None else []
        extra = [self.run_combo.itemData(i) for i in range(self.run_combo.count())]
        # Folders the user opened by hand stay in the list.
        for choice in extra:
            if isinstance(choice, RunChoice) and choice.opened_by_hand and choice not in self.runs:
                self.runs.append(choice)
        for combo in (self.run_combo, self.compare_run_combo):
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for choice in self.runs:
                combo.addItem(choice.label, choice)
                combo.setItemData(combo.count() - 1, str(choice.run_dir), Qt.ItemDataRole.ToolTipRole)
            index = next((i for i, c in enumerate(self.runs) if keep is not None and c.run_dir == keep.run_dir), -1)
            if index < 0 and combo is self.run_combo:
                index = self._last_viewed_index()  # the run the person looked at before a restart
            combo.setCurrentIndex(index if index >= 0 else (preferred_run(self.runs) if self.runs else -1))
            combo.blockSignals(False)
        if not self.runs:
            self.message.show_info(
                "There is no finished Phase 2 run in this workspace yet: train one in the Phase 2 tab "
                "(or open a run folder), then come back here."
            )
        elif self.message.kind == "info":
            self.message.clear_message()
        if (
            self.compare_run_combo.currentIndex() == self.run_combo.currentIndex()
            and self.compare_run_combo.count() > 1
        ):
            self.compare_run_combo.setCurrentIndex(1 if self.run_combo.currentIndex() == 0 else 0)
        new = self.run_combo.currentData()
        if new is not None and (current is None or new.run_dir != current.run_dir):
            self._run_changed()

    def add_run_folder(self, folder: str | Path) -> bool:
        """Add a run folder (Open run folder…); False, with a message, when it holds no model."""
        from cognitivetwin_core.errors import CognitiveTwinError

        try:
            choice = RunChoice.from_folder(folder)
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
            return False
        existing = next((i for i, c in enumerate(self.runs) if c.run_dir == choice.run_dir), -1)
        if existing < 0:
            self.runs.append(choice)
            for combo in (self.run_combo, self.compare_run_combo):
                combo.addItem(choice.label, choice)
            existing = len(self.runs) - 1
        self.run_combo.setCurrentIndex(existing)
        return True

    def _open_run_folder(self) -> None:
        start = str(self.workspace.runs_dir) if self.workspace is not None else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a Phase 2 run folder", start)
        if folder:
            self.add_run_folder(folder)

    def current_run(self) -> RunChoice | None:
        return self.run_combo.currentData()

    def _last_viewed_index(self) -> int:
        from app import settings

        last = settings.read(LAST_RUN_SETTING)
        return next((i for i, c in enumerate(self.runs) if last and str(c.run_dir) == str(last)), -1)

    def _run_changed(self, *_args) -> None:
        choice = self.current_run()
        self.chat_panel.set_phase2_run(choice.run_dir if choice is not None else None)
        if choice is None:
            return
        from app import settings

        settings.write(LAST_RUN_SETTING, str(choice.run_dir))
        if not self.isVisible():
            # Loading a model costs seconds and memory: only once the user opens the tab.
            self._load_when_shown = True
            return
        self.clear_results(f"Loading {choice.label}…")
        self.message.clear_message()
        self.controller.load_run(choice.run_dir, self.workspace.path if self.workspace is not None else None)
        self.analyze_now()

    def _on_run_loaded(self, loaded) -> None:
        choice = self.current_run()
        if choice is not None and loaded.run_dir == choice.run_dir:
            self.map_run_dir = str(loaded.run_dir)
            self._ensure_style_map()
            self.style_map.set_points(loaded.map_signatures, loaded.map_points)
            self.style_map.set_color_by(self.map_color_combo.currentData())
            count = len(loaded.map_points)
            self.map_status.setText(f"{count:,} messages{' (a sample)' if loaded.map_sampled else ''}")
            if self.main_result is not None:
                self._mark_map()
        self.runLoaded.emit(str(loaded.run_dir))
