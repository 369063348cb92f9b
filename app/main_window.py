"""The studio's one main window: six tabs (Start, the guided path, first), the File menu, the status bar, the demo offer.

Tabs are built from `TAB_FACTORIES` (title, shortcut digit, factory): swap a factory to
replace a tab's widget. A tab may implement any of these optional methods, which the window
calls when it applies:

- ``set_workspace(workspace)``: the open `cognitivetwin_core.data.workspace.Workspace` changed;
- ``set_base_model(name)``: the chosen base model changed;
- ``confirm_close() -> bool``: the window is about to close; False keeps it open (the tab
  asked the user, and closes the window itself once its work has stopped);
- ``shutdown()``: the window is closing: cancel and wait for background work.

The workspace is opened here (File ▸ New/Open workspace…, `--workspace`, or the last one
from the settings; the default one on first start) and the window offers the demo data
while the workspace is empty.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QSize, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import settings
from app.qt.tasks import start_task
from app.widgets.message_label import MessageLabel
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.logging_setup import log_file_path
from cognitivetwin_core.models.catalog import CATALOG
from cognitivetwin_core.paths import default_workspace_dir

if TYPE_CHECKING:
    from app.tabs.connections_tab import ConnectionsTab
    from app.tabs.data_tab import DataTab

log = logging.getLogger(__name__)


# Each tab's module is imported when the tab is first built, not when the window starts:
# the training and playground tabs import numpy, pyqtgraph and the SDKs, the Data tab the
# core's importers and annotators.
def _start_tab() -> QWidget:
    from app.tabs.start_tab import StartTab

    return StartTab()


def _connections_tab() -> QWidget:
    from app.tabs.connections_tab import ConnectionsTab

    return ConnectionsTab()


def _data_tab() -> QWidget:
    from app.tabs.data_tab import DataTab

    return DataTab()


def _phase1_tab() -> QWidget:
    from app.tabs.phase1_tab import Phase1Tab

    return Phase1Tab()


def _phase2_tab() -> QWidget:
    from app.tabs.phase2_tab import Phase2Tab

    return Phase2Tab()


def _playground_tab() -> QWidget:
    from app.tabs.playground_tab import PlaygroundTab

    return PlaygroundTab()


# (title, Ctrl+digit shortcut, factory), in tab order; the digit is the tab's position.
# The current tab is built with the window; the others when first shown or first looked up
# in `MainWindow.tab_widgets` (or `connections_tab` / `data_tab`). Start (the guided path)
# comes first, so a fresh start opens on it.
TAB_FACTORIES: list[tuple[str, str, Callable[[], QWidget]]] = [
    ("&Start", "1", _start_tab),
    ("&Connections", "2", _connections_tab),
    ("&Data", "3", _data_tab),
    ("Phase &1", "4", _phase1_tab),
    ("Phase &2", "5", _phase2_tab),
    ("&Playground", "6", _playground_tab),
]


def _open_first_workspace(progress, cancelled, candidates):
    """Worker-thread body: the first candidate that opens; else the first candidate's error."""
    from cognitivetwin_core.data.workspace import Workspace

    first_error = None
    for candidate in candidates:
        try:
            return Workspace.open(candidate)
        except CognitiveTwinError as exc:
            first_error = first_error or exc
    raise first_error


class _FitScrollArea(QScrollArea):
    """A scroll area whose widget fills the view exactly, and scrolls only where the view is
    smaller than the widget's minimum size. (QScrollArea's own widgetResizable gives a widget
    with word-wrapped labels its preferred height, so every such tab would scroll.)"""

    def __init__(self):
        super().__init__()
        self.setWidgetResizable(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._fit_timer = QTimer(self)  # owned: it goes with the area (a bare singleShot outlived it)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.timeout.connect(self._fit)

    def setWidget(self, widget: QWidget) -> None:  # noqa: N802 - Qt's name
        super().setWidget(widget)
        widget.installEventFilter(self)
        self._fit()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit_timer.start(0)  # the widget's minimum size may have changed
        return False

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        widget = self.widget()
        if widget is None:
            return
        minimum = widget.minimumSizeHint().expandedTo(widget.minimumSize())
        view = self.maximumViewportSize()
        width = max(view.width(), minimum.width())
        height = max(view.height(), minimum.height())
        if width > view.width():  # a horizontal scroll bar takes height from the view
            height = max(view.height() - self.horizontalScrollBar().sizeHint().height(), minimum.height())
        if height > view.height():
            width = max(view.width() - self.verticalScrollBar().sizeHint().width(), minimum.width())
        if widget.size() != QSize(width, height):
            widget.resize(width, height)


class _TabPage(QWidget):
    """The page a tab shows: it builds the tab's widget from its factory on first need."""

    def __init__(self, factory: Callable[[], QWidget], on_built: Callable[[QWidget], None]):
        super().__init__()
        self._factory = factory
        self._on_built = on_built
        self.widget: QWidget | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    def build(self) -> QWidget:
        if self.widget is None:
            self.widget = self._factory()
            # In a scroll area: a tab whose content needs more room than the window has scrolls
            # instead of widening the window when it is first shown (a window must keep its size).
            scroll = _FitScrollArea()
            scroll.setWidget(self.widget)
            self.layout().addWidget(scroll)
            scroll.show()  # at once, not on the layout's queued show
            self.widget.show()
            self._on_built(self.widget)
        return self.widget


class _LazyTabWidget(QTabWidget):
    """A QTabWidget whose pages are `_TabPage`s: Python callers pass and get the tabs' own
    widgets (`setCurrentWidget(window.data_tab)`, `currentWidget() is tab`)."""

    def indexOf(self, widget: QWidget) -> int:  # noqa: N802 - Qt's name
        for index in range(self.count()):
            page = super().widget(index)
            if page is widget or getattr(page, "widget", None) is widget:
                return index
        return -1

    def setCurrentWidget(self, widget: QWidget) -> None:  # noqa: N802 - Qt's name
        index = self.indexOf(widget)
        if index >= 0:
            self.setCurrentIndex(index)

    def currentWidget(self) -> QWidget | None:  # noqa: N802 - Qt's name
        page = super().currentWidget()
        return page.build() if isinstance(page, _TabPage) else page

    def widget(self, index: int) -> QWidget | None:
        page = super().widget(index)
        return page.build() if isinstance(page, _TabPage) else page


class TabWidgets(Mapping):
    """Title -> the tab's widget; looking a tab up builds it (so callers always get the real
    tab); iterating `built()` touches only the tabs that exist."""

    def __init__(self):
        self._pages: dict[str, _TabPage] = {}

    def __getitem__(self, title: str) -> QWidget:
        return self._pages[title].build()

    def __iter__(self):
        return iter(self._pages)

    def __len__(self) -> int:
        return len(self._pages)

    def page(self, title: str) -> _TabPage:
        return self._pages[title]

    def built(self) -> list[QWidget]:
        return [page.widget for page in self._pages.values() if page.widget is not None]


class MainWindow(QMainWindow):
    workspaceChanged = Signal(object)
    deviceDetected = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("CognitiveTwin Studio")
        self.workspace = None
        self._workspace_job = None
        self._closed = False
        self.base_model = settings.base_model()

        self.tabs = _LazyTabWidget()
        self.tabs.setDocumentMode(True)
        self.tab_widgets = TabWidgets()
        self._broadcast_state: dict[str, tuple] = {}  # the last set_workspace/set_base_model, for late tabs
        for title, digit, factory in TAB_FACTORIES:
            plain = title.replace("&", "")
            page = _TabPage(factory, self._tab_built)
            self.tab_widgets._pages[plain] = page
            index = self.tabs.addTab(page, title)
            self.tabs.setTabToolTip(index, f"{plain} (Ctrl+{digit})")
            shortcut = QShortcut(QKeySequence(f"Ctrl+{digit}"), self)
            shortcut.activated.connect(lambda i=index: self.tabs.setCurrentIndex(i))
        self.tabs.currentChanged.connect(self._build_current_tab)

        self.workspace_message = MessageLabel()
        self.demo_banner = self._build_demo_banner()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.workspace_message)
        layout.addWidget(self.demo_banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self._build_menus()
        self._build_status_bar()
        self._restore_window_state()
        from app.widgets.glossary_tips import install as install_glossary_tooltips

        install_glossary_tooltips(QApplication.instance())  # plain meanings in every tooltip
        self._build_current_tab(self.tabs.currentIndex())  # the restored one; the rest wait
        self._broadcast("set_base_model", self.base_model)

    # --- building ---------------------------------------------------------------------------

    def _build_demo_banner(self) -> QFrame:
        banner = QFrame()
        banner.setObjectName("demoBanner")
        row = QHBoxLayout(banner)
        text = QLabel(
            "This workspace is empty. Load the bundled demo conversations to explore the app "
            "without an account, or import your own data in the Data tab."
        )
        text.setWordWrap(True)
        self.demo_load_button = QPushButton("Load demo data")
        self.demo_dismiss_button = QPushButton("Not now")
        self.demo_load_button.clicked.connect(self.load_demo_data)
        self.demo_dismiss_button.clicked.connect(self.dismiss_demo_offer)
        row.addWidget(text, 1)
        row.addWidget(self.demo_load_button)
        row.addWidget(self.demo_dismiss_button)
        banner.hide()
        return banner

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        new_action = QAction("&New workspace…", self)
        new_action.setShortcut(QKeySequence.StandardKey.New)
        new_action.triggered.connect(lambda: self._choose_workspace("Create a new workspace in this folder"))
        open_action = QAction("&Open workspace…", self)
        open_action.setShortcut(QKeySequence.StandardKey.Open)
        open_action.triggered.connect(lambda: self._choose_workspace("Open a workspace folder"))
        default_action = QAction("Open the &default workspace", self)
        default_action.triggered.connect(lambda: self.open_workspace_in_background(default_workspace_dir()))
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (new_action, open_action, default_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        guide_action = QAction("&Guide", self)
        guide_action.setShortcut(QKeySequence.StandardKey.HelpContents)
        guide_action.triggered.connect(self.show_guide)
        help_menu.addAction(guide_action)
        start_action = QAction("&Start page (what to do next)", self)
        start_action.triggered.connect(lambda: self.tabs.setCurrentIndex(0))
        help_menu.addAction(start_action)
        help_menu.addSeparator()
        logs_action = QAction("Open the &log folder", self)
        logs_action.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_file_path().parent))))
        about_action = QAction("&About CognitiveTwin Studio", self)
        about_action.triggered.connect(self._show_about)
        help_menu.addAction(logs_action)
        help_menu.addAction(about_action)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.workspace_status = QLabel("Workspace: none")
        self.base_model_status = QLabel()
        self.device_status = QLabel("Device: detecting…")
        for label in (self.workspace_status, self.base_model_status, self.device_status):
            bar.addPermanentWidget(label)
        self._show_base_model()
        from app.qt.builtin_model import builtin_model_preparation
        from app.widgets.builtin_model_status import BuiltinModelStatus

        self.builtin_model_status = BuiltinModelStatus(builtin_model_preparation())
        bar.addWidget(self.builtin_model_status, 1)

    def prepare_builtin_model(self) -> None:
        """The built-in model's one-time conversion, started once the window is idle
        (`app/qt/builtin_model.py`), not when the person first presses Dry run."""
        from app.qt.builtin_model import builtin_model_preparation

        builtin_model_preparation().start()

    def _show_base_model(self) -> None:
        spec = CATALOG.get(self.base_model)
        self.base_model_status.setText(f"Base model: {spec.display_name if spec else self.base_model}")

    def show_guide(self):
        """Help ▸ Guide: the offline guide, not modal (it stays open beside the window)."""
        from app.dialogs.guide import GuideDialog

        if getattr(self, "guide_dialog", None) is None:
            self.guide_dialog = GuideDialog(self)
        self.guide_dialog.show()
        if QApplication.platformName() != "offscreen":  # headless has no window stack to raise in
            self.guide_dialog.raise_()
        return self.guide_dialog

    def open_tab(self, title: str) -> None:
        """Show the tab titled `title` (without its "&"), building it if needed."""
        page = self.tab_widgets.page(title)
        self.tabs.setCurrentIndex(self.tabs.indexOf(page))

    def _show_about(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("About CognitiveTwin Studio")
        box.setText(
            "CognitiveTwin Studio trains a cognitive twin of a person from their conversations.\n\n"
            f"Keys are kept in the system keyring only. Log file: {log_file_path()}"
        )
        box.open()

    # --- workspace ----------------------------------------------------------------------------

    def _choose_workspace(self, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, str(default_workspace_dir().parent))
        if folder:
            self.open_workspace_in_background(Path(folder))

    def open_workspace(self, path: Path | str | None) -> bool:
        """Open (or create) the workspace at `path` on this thread; a fixable problem is shown
        inline. The window's own menu and start-up use `open_workspace_in_background`."""
        from cognitivetwin_core.data.workspace import Workspace

        try:
            workspace = Workspace.open(path)
        except CognitiveTwinError as exc:
            self._workspace_failed(exc)
            return False
        self._adopt_workspace(workspace)
        return True

    def open_workspace_in_background(self, path: Path | str | None, *, fallbacks: tuple = ()) -> bool:
        """Open the workspace at `path` (else the first of `fallbacks` that opens) on a worker
        thread: `Workspace.open` may migrate it and re-annotate every message. The status bar
        says so meanwhile; `workspaceChanged` (or the inline error) follows. False while
        another open is still running."""
        from app.qt.background_job import BackgroundJob

        if self._workspace_job is not None and self._workspace_job.is_running():
            self.statusBar().showMessage("A workspace is still opening: try again in a moment.", 5_000)
            return False
        job = self._workspace_job = BackgroundJob(self, name="open workspace")
        job.succeeded.connect(self._adopt_workspace)
        job.failed.connect(self._workspace_failed)
        job.finished.connect(self.statusBar().clearMessage)
        shown = "the default workspace" if path is None else str(path)
        self.statusBar().showMessage(f"Opening {shown} (updating its annotations if needed)…")
        job.start(_open_first_workspace, (path, *fallbacks))
        return True

    def is_opening_workspace(self) -> bool:
        return self._workspace_job is not None and self._workspace_job.is_running()

    def _workspace_failed(self, exc: object) -> None:
        if not isinstance(exc, CognitiveTwinError):
            from app.dialogs.errors import report_unexpected

            report_unexpected(exc, context="opening the workspace")
            return
        self.workspace_message.show_error(f"{exc} The previous workspace stays open.")

    def _adopt_workspace(self, workspace) -> None:
        if self._closed:  # a background open that ended after the window closed
            workspace.close()
            return
        previous, self.workspace = self.workspace, workspace
        self.workspace_message.clear_message()
        settings.write(settings.LAST_WORKSPACE, str(workspace.path))
        # Its name, not its path: a long path pushed the status bar's other words out of a
        # small window. The path is in the tooltip.
        folder = Path(workspace.path).resolve()
        name = "default" if folder == default_workspace_dir().resolve() else folder.name
        self.workspace_status.setText(f"Workspace: {name}")
        self.workspace_status.setToolTip(f"The workspace's folder: {workspace.path}")
        self._broadcast("set_workspace", workspace)
        self.workspaceChanged.emit(workspace)
        if previous is not None and previous is not workspace:
            previous.close()
        self._update_demo_offer()
        log.info("opened workspace %s", workspace.path)

    def open_initial_workspace(self, requested: str | None = None, *, background: bool = False) -> None:
        """`--workspace`, else the last one used, else the default (created on first start);
        with `background`, on a worker thread (the app's start-up, after the first paint)."""
        last = settings.read(settings.LAST_WORKSPACE)
        candidates = [requested] if requested else ([last] if last and Path(last).is_dir() else []) + [None]
        if background:
            self.open_workspace_in_background(candidates[0], fallbacks=tuple(candidates[1:]))
            return
        for candidate in candidates:
            if self.open_workspace(candidate):
                return

    def _update_demo_offer(self, *_args) -> None:
        empty = self.workspace is not None and self.workspace.count_conversations() == 0
        offer = empty and not settings.read_bool(settings.DEMO_OFFER_DISMISSED)
        self.demo_banner.setVisible(offer)

    def load_demo_data(self) -> None:
        self.demo_banner.hide()
        self.tabs.setCurrentWidget(self.data_tab)
        self.data_tab.import_demo()

    def dismiss_demo_offer(self) -> None:
        settings.write(settings.DEMO_OFFER_DISMISSED, True)
        self.demo_banner.hide()

    # --- base model and device ------------------------------------------------------------------

    def set_base_model(self, name: str) -> None:
        self.base_model = name
        settings.write(settings.BASE_MODEL, name)
        self._show_base_model()
        self._broadcast("set_base_model", name)

    def detect_device(self) -> None:
        """Fill the device part of the status bar without importing torch on the GUI thread."""
        start_task(self._detect_device(), name="detect device")

    async def _detect_device(self) -> None:
        from app.device_status import describe_device  # after the first paint (main.py's timer)

        text = await asyncio.to_thread(describe_device)
        self.device_status.setText(f"Device: {text}")
        self.deviceDetected.emit(text)

    # --- tabs and window state ------------------------------------------------------------------

    def _broadcast(self, method: str, *args) -> None:
        if method in ("set_workspace", "set_base_model"):
            self._broadcast_state[method] = args
        for widget in self.tab_widgets.built():
            handler = getattr(widget, method, None)
            if callable(handler):
                handler(*args)

    def _build_current_tab(self, index: int) -> None:
        if index >= 0:
            widget = self.tabs.widget(index)  # builds it
            from app.widgets.glossary_tips import apply_glossary

            # Again on each show: labels change their text as the app runs.
            apply_glossary(widget)

    @property
    def connections_tab(self) -> ConnectionsTab:
        return self.tab_widgets["Connections"]

    @property
    def data_tab(self) -> DataTab:
        return self.tab_widgets["Data"]

    def _tab_built(self, widget: QWidget) -> None:
        """A tab built late gets the base model and workspace the others already have."""
        import_finished = getattr(widget, "importFinished", None)
        if import_finished is not None:  # the Data tab: an import may fill the workspace
            import_finished.connect(self._update_demo_offer)
        fix_elsewhere = getattr(widget, "openTabRequested", None)
        if fix_elsewhere is not None:  # e.g. Phase 1: "Add a key" opens Connections
            fix_elsewhere.connect(self.open_tab)
        together_launched = getattr(widget, "togetherJobLaunched", None)
        if together_launched is not None:  # the Playground's Teach on Together: Phase 1's list follows it
            together_launched.connect(lambda job_id: self._broadcast("follow_together_job", job_id))
        open_tab = getattr(widget, "openTab", None)
        if open_tab is not None:  # the Start tab's guided path
            open_tab.connect(self.open_tab)
            widget.demoRequested.connect(self.load_demo_data)
            widget.guideRequested.connect(self.show_guide)
        for method in ("set_base_model", "set_workspace"):
            handler = getattr(widget, method, None)
            if method in self._broadcast_state and callable(handler):
                handler(*self._broadcast_state[method])

    def _restore_window_state(self) -> None:
        geometry = settings.read(settings.WINDOW_GEOMETRY)
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1200, 800)
        state = settings.read(settings.WINDOW_STATE)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        try:
            index = int(settings.read(settings.CURRENT_TAB, 0))
        except (TypeError, ValueError):
            index = 0
        if 0 <= index < self.tabs.count():
            self.tabs.setCurrentIndex(index)

    def save_window_state(self) -> None:
        settings.write(settings.WINDOW_GEOMETRY, self.saveGeometry())
        settings.write(settings.WINDOW_STATE, self.saveState())
        settings.write(settings.CURRENT_TAB, self.tabs.currentIndex())

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        # A tab with running work may ask first (and close the window itself once stopped).
        for widget in self.tab_widgets.built():  # a tab never built has no work running
            confirm = getattr(widget, "confirm_close", None)
            if callable(confirm) and not confirm():
                event.ignore()
                return
        self.save_window_state()
        self._closed = True
        if self._workspace_job is not None:
            self._workspace_job.wait()  # an open in flight ends before the window does
        self._broadcast("shutdown")
        if self.workspace is not None:
            self.workspace.close()
            self.workspace = None
        self._broadcast_state.pop("set_workspace", None)  # a tab built after this gets no closed workspace
        super().closeEvent(event)
