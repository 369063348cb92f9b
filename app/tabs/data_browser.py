"""The Data tab's browser: a lazily paged conversation list with search and filters (source,
length, phase, pattern), and the chosen conversation or the statistics beside it (see
data_tab.py).
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.tabs.conversation_list_model import ConversationListModel
from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
from cognitivetwin_core.annotation.trajectory import PHASE_NAMES
from cognitivetwin_core.errors import CognitiveTwinError

SEARCH_DEBOUNCE_MS = 300


class DataBrowser:
    """The conversation list with its search and filters, and the conversation and statistics
    views."""

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
