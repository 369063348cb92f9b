"""The Data tab's conversation list: a lazily paged table model over a workspace.

Only the rows scrolled to are read (`canFetchMore`/`fetchMore`, a page at a time through
`Workspace.list_conversations`), so the list stays responsive at 100k+ messages. The
row count shown is what has been fetched; `total` is the filtered count for the label.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from app.widgets.trajectory_style import phase_label

PAGE_SIZE = 200
COLUMNS = ("Conversation", "Source", "Messages", "Phases", "Patterns", "First message")


class ConversationListModel(QAbstractTableModel):
    IdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent=None):
        super().__init__(parent)
        self.workspace = None
        self.filters: dict = {}
        self.total = 0
        self._rows: list = []
        self._fetching = False

    # --- what is shown ---------------------------------------------------------------------

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.reload()

    def set_filters(self, **filters) -> None:
        """Filters as `Workspace.list_conversations` takes them; None/"" values are dropped."""
        self.filters = {key: value for key, value in filters.items() if value not in (None, "")}
        self.reload()

    def reload(self) -> None:
        self.beginResetModel()
        self._rows = []
        self.total = self.workspace.count_conversations(**self.filters) if self.workspace is not None else 0
        # Views (and qtmodeltester) call fetchMore from their modelReset handlers: inserting
        # rows inside the reset notification breaks them, so rows come after it.
        self._fetching = True
        try:
            self.endResetModel()
        finally:
            self._fetching = False

    def summary(self, row: int):
        return self._rows[row]

    def row_of(self, conversation_id: str) -> int:
        for row, summary in enumerate(self._rows):
            if summary.id == conversation_id:
                return row
        return -1

    # --- lazy paging ---------------------------------------------------------------------------

    def canFetchMore(self, parent=QModelIndex()) -> bool:  # noqa: N802 - Qt's name
        if parent.isValid() or self.workspace is None:
            return False
        return len(self._rows) < self.total

    def fetchMore(self, parent=QModelIndex()) -> None:  # noqa: N802 - Qt's name
        # Views can call fetchMore again while rows are being inserted: ignore re-entry.
        if parent.isValid() or self.workspace is None or self._fetching:
            return
        self._fetching = True
        try:
            page = self.workspace.list_conversations(len(self._rows), PAGE_SIZE, **self.filters)
            if not page:
                self.total = len(self._rows)  # the data shrank under us: stop asking
                return
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
            self._rows.extend(page)
            self.endInsertRows()
        finally:
            self._fetching = False

    # --- the table ------------------------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt's name
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(COLUMNS)
        ):
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        summary = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return summary.title or summary.id
            if column == 1:
                return summary.source
            if column == 2:
                return summary.message_count
            if column == 3:
                return ", ".join(phase_label(p) for p in summary.phases)
            if column == 4:
                return ", ".join(summary.patterns)
            if column == 5:
                return summary.preview
        elif role == Qt.ItemDataRole.ToolTipRole:
            if column == 5:
                return summary.preview
            if column == 0:
                return summary.id
        elif role == Qt.ItemDataRole.TextAlignmentRole and column == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == self.IdRole:
            return summary.id
        return None
