"""The Playground tab's export: the view as a PNG and its numbers as JSON, both written atomically
(see playground_tab.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from app.tabs.playground_controller import result_numbers
from cognitivetwin_core.atomic_files import write_json_atomically, write_via_path_atomically


class PlaygroundExport:
    """Export: the view as a PNG and its numbers as JSON beside it."""

    def _export_clicked(self) -> None:
        start = str(self.workspace.path / "playground.png") if self.workspace is not None else "playground.png"
        path, _ = QFileDialog.getSaveFileName(self, "Export the view", start, "PNG image (*.png)")
        if path:
            self.export_view(path)

    def export_view(self, png_path: str | Path) -> tuple[Path, Path]:
        """Save the tab as PNG at `png_path` and the numbers next to it as .json."""
        png_path = Path(png_path)
        if png_path.suffix.lower() != ".png":
            png_path = png_path.with_suffix(".png")
        json_path = png_path.with_suffix(".json")
        numbers = {
            "main": result_numbers(self.main_result) if self.main_result is not None else None,
            "compare": result_numbers(self.compare_result)
            if self.compare_result is not None and self.compare_check.isChecked()
            else None,
            "signature_cosine": self.compare_cosine if self.compare_check.isChecked() else None,
        }
        try:
            image = self.grab()

            def save_png(temporary: Path) -> None:
                if not image.save(str(temporary), "PNG"):
                    raise OSError(f"could not write {temporary}")

            write_via_path_atomically(png_path, save_png)
            write_json_atomically(json_path, numbers)
        except OSError as exc:
            self.message.show_error(f"Could not export to {png_path.parent}: {exc}. Choose another folder.")
            raise
        self.message.show_ok(f"Exported the view to {png_path} and its numbers to {json_path.name}.")
        self.exported.emit(str(png_path), str(json_path))
        return png_path, json_path
