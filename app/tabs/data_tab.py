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
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import settings
from app.qt.background_job import BackgroundJob
from app.tabs import data_jobs
from app.tabs.conversation_list_model import ConversationListModel
from app.widgets.conversation_view import ConversationView
from app.widgets.message_label import MessageLabel
from app.widgets.stats_view import StatsView
from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
from cognitivetwin_core.annotation.trajectory import PHASE_NAMES
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL

log = logging.getLogger(__name__)

SEARCH_DEBOUNCE_MS = 300
MAX_REPORT_LINES = 500


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


class DataTab(QWidget):
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

    def refresh_speakers(self) -> None:
        """List the workspace's speakers with their counts and select the current choice."""
        from cognitivetwin_core.data.person_identity import canonical, linked_speakers, speaker_links
        from cognitivetwin_core.data.twin_speaker import ROLE_SPEAKERS, SIDE_NAMES

        self.speaker_combo.clear()
        if self.workspace is None:
            return
        # One person across sources: linked names show as one speaker (docs/importers.md).
        speakers = linked_speakers(self.workspace)
        current = canonical(speaker_links(self.workspace), self.workspace.twin_speaker())
        names = [item.name for item in speakers]
        for item in speakers:
            text = item.name if item.named else _capitalised(SIDE_NAMES[item.name])
            self.speaker_combo.addItem(f"{text} — {item.messages:,} messages", item.name)
            if not item.named:  # the exact term for who wants it
                tip = f"The “{item.name}” role of the imported chats."
                self.speaker_combo.setItemData(self.speaker_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        if current not in names:
            self.speaker_combo.addItem(f"{_capitalised(SIDE_NAMES.get(current, current))} — no messages", current)
        self.speaker_combo.setCurrentIndex(self.speaker_combo.findData(current))
        count = next((item.messages for item in speakers if item.name == current), 0)
        named = [item for item in speakers if item.named]
        if named and current in ROLE_SPEAKERS:
            owner = getattr(self.last_report, "owner", None)
            hint = f" The last import looks like {owner}'s export." if owner in names else ""
            self.speaker_status.setText(
                f"Not chosen yet: these chats have {len(named)} participants. Choose yourself, so the twin "
                f"learns your messages.{hint}"
            )
        elif count and not self._speaker_was_chosen():
            self.speaker_status.setText(
                "Not chosen yet: say which side is you, so the twin learns your messages "
                "(the others are what it answers)."
            )
        elif count:
            self.speaker_status.setText(
                f"You: {SIDE_NAMES.get(current, current)} ({count:,} messages). The twin learns to write "
                "like that; everyone else's messages are what it answers."
            )
        else:
            self.speaker_status.setText(
                f"No messages from {SIDE_NAMES.get(current, current)} yet: import some or choose another."
            )
        self.speaker_question.setVisible(bool(speakers))
        self.speaker_combo.setVisible(bool(speakers))
        self.link_speakers_button.setVisible(len(named) > 1)

    def open_link_speakers(self):
        """The "These are all me" dialog, opened without blocking; linking happens on OK."""
        from app.dialogs.link_speakers import LinkSpeakersDialog
        from cognitivetwin_core.data.person_identity import linked_speakers

        if self.workspace is None:
            return None
        named = [(item.name, item.messages) for item in linked_speakers(self.workspace) if item.named]
        dialog = LinkSpeakersDialog(named, self.workspace.twin_speaker(), self)
        dialog.accepted.connect(lambda: self.link_speakers(*dialog.chosen()))
        dialog.open()
        return dialog

    def link_speakers(self, name: str, aliases: list[str]) -> None:
        from cognitivetwin_core.data.person_identity import link_speakers

        try:
            link_speakers(self.workspace, name, aliases)
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
        else:
            self.message.show_ok(f"{name} is now one speaker: " + ", ".join(aliases) + ".")
        self.refresh_speakers()

    def _speaker_was_chosen(self) -> bool:
        """Whether the person said which side is theirs (a setting of the workspace)."""
        from cognitivetwin_core.data.twin_speaker import SETTING_KEY

        try:
            return bool(self.workspace.get_setting(SETTING_KEY))
        except Exception:  # an older workspace without settings: nothing chosen
            return False

    def _speaker_chosen(self, index: int) -> None:
        speaker = self.speaker_combo.itemData(index)
        if self.workspace is None or speaker is None:
            return
        from cognitivetwin_core.data.person_identity import choose_twin_speaker

        try:
            choose_twin_speaker(self.workspace, speaker)
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
        self.refresh_speakers()

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

    def _build_list(self) -> QWidget:
        host = QWidget()
        layout = QVBoxLayout(host)
        layout.setContentsMargins(0, 0, 0, 0)
        filters = QHBoxLayout()
        self.search_field = QLineEdit()
        self.search_field.setPlaceholderText("Search text, title or id…")
        self.search_field.setClearButtonEnabled(True)
        self.source_filter = QComboBox()
        self.source_filter.addItem("All sources", None)
        self.phase_filter = QComboBox()
        self.phase_filter.addItem("Any phase", None)
        for phase_id, name in enumerate(PHASE_NAMES):
            self.phase_filter.addItem(name, phase_id)
        self.pattern_filter = QComboBox()
        self.pattern_filter.addItem("Any pattern", None)
        for name in PATTERN_NAMES:
            self.pattern_filter.addItem(name, name)
        self.min_messages = QSpinBox()
        self.max_messages = QSpinBox()
        for box, prefix in ((self.min_messages, "min "), (self.max_messages, "max ")):
            box.setRange(0, 1_000_000)
            box.setPrefix(prefix)
            box.setSpecialValueText(f"{prefix}any")
            box.setToolTip("Number of messages in the conversation (0: no limit)")
        # Filters keep their width whatever the workspace holds: a combo that grows with a long
        # source or pattern name made the list pane (and the splitter) jump after an import.
        for combo in (self.source_filter, self.phase_filter, self.pattern_filter):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        for box in (self.min_messages, self.max_messages):
            box.setMaximumWidth(box.fontMetrics().horizontalAdvance("max 00000") + 40)
        filters.addWidget(self.search_field, 1)
        filters.addWidget(self.source_filter)
        more_filters = QHBoxLayout()
        for widget in (self.phase_filter, self.pattern_filter, self.min_messages, self.max_messages):
            more_filters.addWidget(widget)
        more_filters.addStretch(1)
        layout.addLayout(filters)
        layout.addLayout(more_filters)

        self.list_model = ConversationListModel(self)
        self.list_view = QTableView()
        self.list_view.setModel(self.list_model)
        self.list_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.list_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list_view.setAlternatingRowColors(True)
        self.list_view.verticalHeader().hide()
        self.list_view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.list_view.setWordWrap(False)
        header = self.list_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in enumerate((150, 90, 70, 150, 170)):
            self.list_view.setColumnWidth(column, width)
        self.list_view.selectionModel().currentRowChanged.connect(self._current_row_changed)
        layout.addWidget(self.list_view, 1)
        self.count_label = QLabel()
        layout.addWidget(self.count_label)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self.apply_filters)
        self.search_field.textChanged.connect(lambda _text: self._search_timer.start())
        for combo in (self.source_filter, self.phase_filter, self.pattern_filter):
            combo.currentIndexChanged.connect(self.apply_filters)
        for box in (self.min_messages, self.max_messages):
            box.valueChanged.connect(lambda _value: self._search_timer.start())
        return host

    # --- workspace and filters ------------------------------------------------------------------

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.conversation_view.clear()
        self.list_model.set_workspace(workspace)
        self.refresh()

    def set_base_model(self, name: str) -> None:
        self.base_model = name
        self.stats_view.show_tokens(f"not counted yet for {name}")

    def refresh(self) -> None:
        """Re-read sources, the filtered list and the statistics (after an import)."""
        if self.workspace is None:
            return
        current = self.source_filter.currentData()
        self.source_filter.blockSignals(True)
        self.source_filter.clear()
        self.source_filter.addItem("All sources", None)
        for source in self.workspace.sources():
            self.source_filter.addItem(source, source)
        index = self.source_filter.findData(current)
        self.source_filter.setCurrentIndex(max(0, index))
        self.source_filter.blockSignals(False)
        self.refresh_speakers()
        self.apply_filters()
        # Charts are drawn when the Statistics tab is shown: pyqtgraph stays out of start-up.
        if self.details.currentWidget() is self.stats_view:
            self.stats_view.show_stats(self.workspace.stats())

    def current_filters(self) -> dict:
        return {
            "search": self.search_field.text().strip() or None,
            "source": self.source_filter.currentData(),
            "phase": self.phase_filter.currentData(),
            "pattern": self.pattern_filter.currentData(),
            "min_messages": self.min_messages.value() or None,
            "max_messages": self.max_messages.value() or None,
        }

    def apply_filters(self) -> None:
        self._search_timer.stop()
        if self.workspace is None:
            return
        self.list_model.set_filters(**self.current_filters())
        # Show the first page now; later pages come as the user scrolls.
        if self.list_model.canFetchMore():
            self.list_model.fetchMore()
        total = self.list_model.total
        all_count = self.workspace.count_conversations()
        self.count_label.setText(
            f"{total:,} of {all_count:,} conversations match" if total != all_count else f"{total:,} conversations"
        )

    def _current_row_changed(self, current, _previous) -> None:
        if current.isValid():
            self.show_conversation(self.list_model.summary(current.row()).id)

    def select_row(self, row: int) -> None:
        index = self.list_model.index(row, 0)
        self.list_view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )

    def show_conversation(self, conversation_id: str) -> None:
        try:
            conversation = self.workspace.get_conversation(conversation_id)
            annotations = self.workspace.annotations(conversation_id)
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
            return
        speaker = self.workspace.twin_speaker() if self.workspace is not None else None
        self.conversation_view.show_conversation(conversation, annotations, twin_speaker=speaker)
        self.details.setCurrentWidget(self.conversation_view)
        self.conversationShown.emit(conversation_id)

    def _details_tab_changed(self, _index: int) -> None:
        if self.details.currentWidget() is self.stats_view and self.workspace is not None:
            self.stats_view.show_stats(self.workspace.stats())

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

    # --- imports ------------------------------------------------------------------------------------

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

    # --- exports and tokens -------------------------------------------------------------------------

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
