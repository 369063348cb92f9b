"""The Data tab: import, browse and export the workspace's conversations.

- Import from each importer of `cognitivetwin_core.data.importers` (file dialogs per format,
  Supabase with the keyring's URL and key and the Connections tab's table and mapping,
  the bundled demo) on a `BackgroundJob` with progress and Cancel; the import report
  (accepted, rejected with file/line/field/reason) is shown in the tab.
- A lazily paged conversation list with search and filters (source, length, phase,
  pattern) and a conversation view with each message's trajectory annotation.
- Statistics with phase and pattern charts; token counts for the chosen base on demand.
- Exports for Phase 1 (Together JSONL) and Phase 2 (trajectory JSONL) with their summary.
- "Which of these is you?": the workspace's speakers with their message counts; the choice
  (the twin's speaker) decides whose messages the twin learns (docs/twin-speaker.md).

Long work runs on worker threads with their own `Workspace` connection, so the list stays
usable (SQLite WAL readers are not blocked by the import's transaction).

The tab is put together from its parts, one module each: the imports (`data_import_panel.py`),
the speakers (`data_speakers.py`), the conversation list and views (`data_browser.py`) and
the exports (`data_exports.py`); the jobs they run are in `data_jobs.py`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.qt.background_job import BackgroundJob
from app.tabs import data_jobs
from app.tabs.data_browser import DataBrowser
from app.tabs.data_exports import DataExports
from app.tabs.data_import_panel import MAX_REPORT_LINES, DataImports
from app.tabs.data_speakers import DataSpeakers
from app.widgets.conversation_view import ConversationView
from app.widgets.message_label import MessageLabel
from app.widgets.stats_view import StatsView
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL


class DataTab(DataImports, DataSpeakers, DataBrowser, DataExports, QWidget):
    """Signals: `importFinished(report)` after a successful import, `exportFinished(summary)`,
    `conversationShown(id)` once the conversation view shows it (tests wait on these)."""

    importFinished = Signal(object)
    exportFinished = Signal(object)
    conversationShown = Signal(str)
    jobFinished = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.base_model = DEFAULT_BASE_MODEL
        self.last_report = None
        self.last_export = None
        self.last_privacy = None
        self._job_kind = ""
        self.job = BackgroundJob(self, name="data job")
        self.job.progress.connect(self._on_progress)
        self.job.succeeded.connect(self._on_job_succeeded)
        self.job.failed.connect(self._on_job_failed)
        self.job.cancelled.connect(self._on_job_cancelled)
        self.job.finished.connect(self._on_job_finished)

        self.setAcceptDrops(True)  # an export dropped on the tab is imported (dropEvent)
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_actions())
        layout.addLayout(self._build_progress())
        self.message = MessageLabel()
        policy = self.message.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the message line keeps its room too (no jump when it shows)
        self.message.setSizePolicy(policy)
        layout.addWidget(self.message)
        self.report_view = QPlainTextEdit()
        self.report_view.setReadOnly(True)
        self.report_view.setMaximumHeight(120)
        self.report_view.setPlaceholderText("Rejected records appear here.")
        self.report_view.hide()
        layout.addWidget(self.report_view)
        layout.addLayout(self._build_speaker_row())

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_list())
        self.details = QTabWidget()
        self.conversation_view = ConversationView()
        self.stats_view = StatsView()
        self.stats_view.countTokensRequested.connect(self.count_tokens)
        self.details.addTab(self.conversation_view, "Conversation")
        self.details.addTab(self.stats_view, "Statistics")
        self.details.currentChanged.connect(self._details_tab_changed)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 4)
        layout.addWidget(splitter, 1)
        self._set_idle(True)

    # --- layout ---------------------------------------------------------------------------------

    def _build_actions(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.import_file_button = QToolButton()
        self.import_file_button.setText("Import a file…")
        self.import_file_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.import_menu = QMenu(self.import_file_button)
        # Filled when first opened: the importers' modules stay out of start-up.
        self.import_menu.aboutToShow.connect(self._fill_import_menu)
        self.import_file_button.setMenu(self.import_menu)
        self.import_supabase_button = QPushButton("Import from Supabase")
        self.import_supabase_button.setToolTip(
            "Uses the URL and key saved in the Connections tab, and its table and column mapping."
        )
        self.import_supabase_button.clicked.connect(self.import_supabase)
        self.import_demo_button = QPushButton("Load demo data")
        self.import_demo_button.clicked.connect(self.import_demo)
        self.strict_box = QCheckBox("Strict (any bad record aborts the import)")
        self.export_phase1_button = QPushButton("Export for Phase 1…")
        self.export_phase1_button.setToolTip("Together conversation JSONL, checked against the base model's limits.")
        self.export_phase1_button.clicked.connect(lambda: self._choose_export("phase1"))
        self.export_phase2_button = QPushButton("Export for Phase 2…")
        self.export_phase2_button.setToolTip("Trajectory JSONL: one line per message with its context.")
        self.export_phase2_button.clicked.connect(lambda: self._choose_export("phase2"))
        self.validation_box = QCheckBox("Hold out 10% for validation")
        self.validation_box.setToolTip(
            "Phase 1 export: a validation file split by conversation (no conversation in both)."
        )
        for widget in (self.import_file_button, self.import_supabase_button, self.import_demo_button, self.strict_box):
            row.addWidget(widget)
        row.addStretch(1)
        return row

    def _build_speaker_row(self) -> QVBoxLayout:
        # Two lines, so the tab fits a 1000-pixel window: who is the person, then what the
        # exports do (personal data, validation, the two exports).
        rows = QVBoxLayout()
        row = QHBoxLayout()
        exports = QHBoxLayout()
        rows.addLayout(row)
        rows.addLayout(exports)
        self.speaker_question = QLabel("<b>Which of these is you?</b>")
        self.speaker_combo = QComboBox()
        self.speaker_combo.setMinimumContentsLength(28)
        self.speaker_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.speaker_combo.setToolTip(
            "The twin learns to write like this speaker: their messages are what training teaches; "
            "everyone else's are the context it answers."
        )
        self.speaker_combo.activated.connect(self._speaker_chosen)
        self.speaker_status = QLabel()
        self.speaker_status.setWordWrap(True)
        # Room for two lines from the start: the list below must not move when the status fills in.
        self.speaker_status.setMinimumHeight(2 * self.speaker_status.fontMetrics().lineSpacing())
        self.link_speakers_button = QPushButton("These are all me…")
        self.link_speakers_button.setToolTip(
            "Your names, numbers, e-mail addresses and handles in different chats are one person: "
            "link them so the twin learns all of them as yours (speaker links)."
        )
        self.link_speakers_button.clicked.connect(self.open_link_speakers)
        self.link_speakers_button.hide()  # until there are several people to link
        row.addWidget(self.speaker_question)
        row.addWidget(self.speaker_combo)
        row.addWidget(self.link_speakers_button)
        row.addWidget(self.speaker_status, 1)
        # What the Phase 1 export does with personal data (what would leave the computer).
        self.privacy_choice = QComboBox()
        for text, value in (
            ("Keep personal data as it is", "keep"),
            ("Replace personal data with placeholders", "redact"),
            ("Leave out conversations with personal data", "leave-out"),
        ):
            self.privacy_choice.addItem(text, value)
        self.privacy_choice.setToolTip(
            "For the Phase 1 export (what is uploaded to Together): e-mail addresses, phone numbers, card "
            "and bank account numbers, IP addresses, API keys and the participants' names. Placeholders look "
            "like <EMAIL> and <PHONE>."
        )
        self.privacy_button = QPushButton("Check personal data")
        self.privacy_button.setToolTip("Find personal data in the messages and show examples.")
        self.privacy_button.clicked.connect(self.check_privacy)
        exports.addWidget(self.privacy_choice)
        exports.addWidget(self.privacy_button)
        exports.addStretch(1)
        exports.addWidget(self.validation_box)
        exports.addWidget(self.export_phase1_button)
        exports.addWidget(self.export_phase2_button)
        return rows

    def _build_progress(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.progress_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_job)
        row.addWidget(self.progress_label)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        for widget in (self.progress_label, self.progress_bar, self.cancel_button):
            # Hidden between jobs but keeping their room: the list below must not jump at each job.
            policy = widget.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            widget.setSizePolicy(policy)
        return row

    # --- workspace -------------------------------------------------------------------------

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.conversation_view.clear()
        self.list_model.set_workspace(workspace)
        self.refresh()

    def set_base_model(self, name: str) -> None:
        self.base_model = name
        self.stats_view.show_tokens(f"not counted yet for {name}")

    # --- background jobs --------------------------------------------------------------------------

    def _set_idle(self, idle: bool) -> None:
        for widget in (
            self.import_file_button,
            self.import_supabase_button,
            self.import_demo_button,
            self.export_phase1_button,
            self.export_phase2_button,
            self.strict_box,
            self.validation_box,
            self.privacy_button,
            self.privacy_choice,
        ):
            widget.setEnabled(idle)
        self.stats_view.set_token_count_busy(not idle)
        for widget in (self.progress_label, self.progress_bar, self.cancel_button):
            widget.setVisible(not idle)
        self.cancel_button.setEnabled(not idle)

    def _start(self, kind: str, description: str, fn, *args) -> bool:
        if self.workspace is None:
            self.message.show_error("No workspace is open: open or create one from the File menu first.")
            return False
        if self.job.is_running():
            self.message.show_info("Another data task is still running: wait for it or cancel it first.")
            return False
        self._job_kind = kind
        self.message.show_info(description)
        self.report_view.hide()
        self.progress_label.setText(description)
        self.progress_bar.setRange(0, 0)  # busy until the first tick says how much there is
        self._set_idle(False)
        self.job.start(fn, *args)
        return True

    def cancel_job(self) -> None:
        if self.job.is_running():
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")
            self.job.cancel()

    def _on_progress(self, tick) -> None:
        text, fraction = data_jobs.describe_progress(tick)
        self.progress_label.setText(text)
        if fraction is None:
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(fraction * 1000))

    def _on_job_succeeded(self, result) -> None:
        kind = self._job_kind
        if kind == "import":
            self._show_report(result)
            self.refresh()
            self.importFinished.emit(result)
        elif kind == "export":
            self.last_export = result
            self.message.show_ok(data_jobs.describe_export(result))
            skipped = [str(item) for item in getattr(result, "skipped", [])][:MAX_REPORT_LINES]
            warnings = list(getattr(result, "warnings", []))
            self.report_view.setPlainText("\n".join(warnings + [f"Skipped {line}" for line in skipped]))
            self.report_view.setVisible(bool(skipped or warnings))
            self.exportFinished.emit(result)
        elif kind == "tokens":
            self.stats_view.show_tokens(result)
            self.message.clear_message()
        elif kind == "privacy":
            self.last_privacy = result
            lines = result.lines(
                advice="Choose what the Phase 1 export does with them: keep them, replace them with "
                "placeholders such as <EMAIL>, or leave those conversations out (the list beside the check)."
            )
            (self.message.show_info if result.total else self.message.show_ok)(lines[0])
            self.report_view.setPlainText("\n".join(lines[1:]))
            self.report_view.setVisible(len(lines) > 1)

    def _on_job_failed(self, exc) -> None:
        if isinstance(exc, CognitiveTwinError):
            self.message.show_error(str(exc))
        else:
            # A bug, not the user's doing: BackgroundJob has logged it; show the details dialog too.
            import traceback

            from app.dialogs.errors import ErrorDialog

            self.message.show_error(
                f"The {self._job_kind} stopped on an unexpected error ({type(exc).__name__}). "
                "Nothing was changed; the details are in the log file (Help ▸ Open the log folder)."
            )
            ErrorDialog.show_error(
                f"The {self._job_kind} stopped on an unexpected error: {type(exc).__name__}: {exc}",
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            )

    def _on_job_cancelled(self) -> None:
        what = {
            "import": "Import cancelled: nothing was imported.",
            "export": "Export cancelled: no file was written.",
            "tokens": "Token count cancelled.",
            "privacy": "Personal-data check cancelled.",
        }
        self.message.show_info(what.get(self._job_kind, "Cancelled."))
        if self._job_kind == "import":
            self.refresh()

    def _on_job_finished(self) -> None:
        self._set_idle(True)
        self.jobFinished.emit()

    def shutdown(self) -> None:
        if self.job.is_running():
            self.job.cancel()
            self.job.wait()
