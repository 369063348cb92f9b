"""The Download row shown where the app offers a catalog base that is not on disk.

"Llama 3.2 1B Instruct is not on this computer. [Download] [Cancel] [progress]". The
download runs `cognitivetwin_core.models.hub.download` on a BackgroundJob (with the token
from HF_TOKEN or the keyring, read on the worker thread since the keyring can block);
Cancel stops it at the next chunk and keeps the finished files. Gated bases and a full
disk come back as the core's one sentence. See docs/models.md.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.qt.background_job import BackgroundJob
from app.widgets.message_label import MessageLabel


def _download(progress, cancellation, repo_id: str):
    from cognitivetwin_core.connections.secrets import huggingface_token
    from cognitivetwin_core.models import hub

    return hub.download(
        repo_id,
        token=huggingface_token(),
        progress=lambda done, total: progress((done, total)),
        cancellation=cancellation,
    )


class BaseDownloadRow(QWidget):
    """Hidden unless the base set with `set_base` is a catalog base missing from disk."""

    downloaded = Signal(str)  # the catalog name, now usable
    finished = Signal()  # after success, failure or cancel (tests wait on it)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = None
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.message = MessageLabel()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label, 1)
        row.addWidget(self.download_button)
        row.addWidget(self.cancel_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(row)
        box.addWidget(self.progress)
        box.addWidget(self.message)
        self.job = BackgroundJob(self, name="base download")
        self.job.progress.connect(self._on_progress)
        self.job.succeeded.connect(self._on_done)
        self.job.failed.connect(self._on_failed)
        self.job.cancelled.connect(self._on_cancelled)
        self.job.finished.connect(self._update)
        self.job.finished.connect(self.finished)
        self.download_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.job.cancel)
        self._update()

    def set_base(self, name) -> None:
        """A catalog name (shown when not on disk), or anything else (hidden)."""
        from cognitivetwin_core.models.catalog import CATALOG

        spec = CATALOG.get(name) if isinstance(name, str) else None
        self.spec = spec if spec is not None and not spec.local_available else None
        self.message.clear_message()
        if self.spec is not None:
            self.label.setText(
                f"{self.spec.display_name} is not on this computer: download it once from the Hugging Face Hub "
                f"({self.spec.hf_repo})."
            )
        self._update()

    def start(self) -> None:
        if self.spec is None or self.job.is_running():
            return
        self.message.clear_message()
        self.progress.setValue(0)
        self.progress.setFormat("Checking the files and the free disk space…")
        self.job.start(_download, self.spec.hf_repo)
        self._update()

    def _update(self, *_args) -> None:
        running = self.job.is_running()
        self.setVisible(self.spec is not None or running or bool(self.message.kind))
        self.download_button.setEnabled(not running and self.spec is not None)
        self.cancel_button.setVisible(running)
        self.progress.setVisible(running)

    def _on_progress(self, value) -> None:
        done, total = value
        if total:
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{done / 2**20:,.0f} of {total / 2**20:,.0f} MiB")

    def _on_done(self, folder) -> None:
        name = self.spec.short_name if self.spec else ""
        self.spec = None
        self.message.show_ok(f"Downloaded to {folder}; it is ready to train on.")
        self.downloaded.emit(name)

    def _on_failed(self, exc) -> None:
        from cognitivetwin_core.errors import CognitiveTwinError

        text = str(exc) if isinstance(exc, CognitiveTwinError) else f"The download failed ({type(exc).__name__})."
        self.message.show_error(text)

    def _on_cancelled(self) -> None:
        self.message.show_info("Download stopped; the files finished so far are kept, and Download continues it.")

    def shutdown(self) -> None:
        self.job.cancel()
        self.job.wait()
