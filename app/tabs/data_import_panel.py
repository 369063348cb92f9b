"""The Data tab's imports: a file (any export, or one format from the menu), a folder, a dropped
file, the bundled demo or Supabase, each on the tab's BackgroundJob, and the import report (see
data_tab.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from app import settings
from app.tabs import data_jobs

MAX_REPORT_LINES = 500


class DataImports:
    """Imports: the menu of formats, files and folders chosen or dropped, the demo, Supabase, and
    the import report."""

    def _fill_import_menu(self) -> None:
        if self.import_menu.actions():
            return
        any_file = self.import_menu.addAction("Any export (recognised automatically)…")
        any_file.triggered.connect(self._choose_any_file)
        folder = self.import_menu.addAction("An export folder (as downloaded and unpacked)…")
        folder.triggered.connect(self._choose_import_folder)
        self.import_menu.addSeparator()
        for importer in data_jobs.file_importers():
            action = self.import_menu.addAction(importer.label)
            action.triggered.connect(lambda _checked=False, imp=importer: self._choose_import_file(imp))

    def _choose_any_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import an export", str(Path.home()), "All files (*)")
        if path:
            self.import_file(path)

    def _choose_import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import an export folder", str(Path.home()))
        if path:
            self.import_file(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls() and all(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """A file, folder or zip dropped on the tab: imported with its format recognised."""
        urls = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.import_file(urls[0])

    def _choose_import_file(self, importer) -> None:
        path, _ = QFileDialog.getOpenFileName(self, f"Import {importer.label}", str(Path.home()), importer.file_filter)
        if path:
            self.import_file(path, importer.name)

    def import_file(self, path: str | Path, importer_name: str | None = None) -> bool:
        path = Path(path)
        return self._start(
            "import",
            f"Importing {path.name}…",
            data_jobs.run_import,
            self.workspace.path if self.workspace else None,
            path,
            importer_name,
            self.strict_box.isChecked(),
        )

    def import_demo(self) -> bool:
        return self._start(
            "import",
            "Importing the demo conversations…",
            data_jobs.run_import,
            self.workspace.path if self.workspace else None,
            "demo",
            "demo",
            self.strict_box.isChecked(),
        )

    def import_supabase(self) -> bool:
        return self._start(
            "import",
            f"Importing the Supabase table “{settings.supabase_table()}”…",
            data_jobs.run_supabase_import,
            self.workspace.path if self.workspace else None,
            settings.supabase_table(),
            settings.supabase_mapping_overrides(),
            self.strict_box.isChecked(),
        )

    def _show_report(self, report) -> None:
        self.last_report = report
        text = data_jobs.describe_report(report)
        (self.message.show_ok if report.ok else self.message.show_error)(text)
        lines = [str(rejection) for rejection in report.rejected[:MAX_REPORT_LINES]]
        if len(report.rejected) > MAX_REPORT_LINES:
            lines.append(
                f"… and {len(report.rejected) - MAX_REPORT_LINES} more (the full report is stored with the import)."
            )
        if report.truncated_at:
            lines.insert(0, f"The file ends early: {report.truncated_at}")
        lines.extend(report.warnings)
        self.report_view.setPlainText("\n".join(lines))
        self.report_view.setVisible(bool(lines))
