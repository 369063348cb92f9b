"""The Playground tab: what the trained twin learned, for one message at a time.

Pick a Phase 2 run of the workspace (or any run folder), then a conversation and message
of the workspace or type a message (with optional context). The tab shows four panels:

- pattern probabilities (sorted bars with values, the data's labels beside them);
- the style signature (256-d heat strip), its stylometric readout (predicted vs measured)
  and a 2-D PCA map of the workspace's message signatures, coloured by role or
  conversation, with the current message highlighted and hover text;
- the plan steps, each with the nearest real workspace messages by cosine;
- the trajectory (5 coordinates + phase) as sliders that re-run the analysis.

Compare puts two messages (or one message under two runs) side by side with the cosine of
their signatures. Export writes the view as PNG and the numbers as JSON.

All model work runs through `PlaygroundController` (a `BackgroundJob`, off the GUI thread):
the first load shows progress; later analyses reuse the loaded model and cached features.
Typed text is analysed as you type, debounced.

The tab is put together from its parts, one module each: the runs (`playground_runs.py`),
the inputs (`playground_inputs.py`: a workspace message, typed text, the sliders, Compare),
the analysis view (`playground_analysis_view.py`) and the export (`playground_export.py`);
Chat, the blind test and Teach are panels of their own.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSplitter, QVBoxLayout, QWidget

from app.tabs.playground_analysis_view import PlaygroundAnalysisView
from app.tabs.playground_controller import PlaygroundController, RunChoice
from app.tabs.playground_export import PlaygroundExport
from app.tabs.playground_inputs import PlaygroundInputs
from app.tabs.playground_runs import PlaygroundRuns
from app.widgets.message_label import MessageLabel

TYPING_DEBOUNCE_MS = 400
SLIDER_DEBOUNCE_MS = 120


class PlaygroundTab(PlaygroundRuns, PlaygroundInputs, PlaygroundAnalysisView, PlaygroundExport, QWidget):
    """Signals for tests and the window: `runLoaded(run_dir)` when a run is ready,
    `analysisShown(slot)` when a result ("main" or "compare") is on screen,
    `exported(png_path, json_path)`."""

    runLoaded = Signal(str)
    analysisShown = Signal(str)
    exported = Signal(str, str)
    togetherJobLaunched = Signal(str)  # a Teach job on Together: the window has Phase 1 follow it

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace = None
        self.runs: list[RunChoice] = []
        self.main_result = None
        self.compare_result = None
        self.map_run_dir: str | None = None
        self.compare_cosine: float | None = None
        self._load_when_shown = False
        self._slider_key: tuple | None = None  # the message the sliders were set for
        self._serial = 0
        self._wanted = {"main": 0, "compare": 0}
        self.controller = PlaygroundController(self)
        self.controller.progress.connect(self._on_progress)
        self.controller.runLoaded.connect(self._on_run_loaded)
        self.controller.resultReady.connect(self._on_result)
        self.controller.failed.connect(self._on_failed)
        self.controller.busyChanged.connect(self._on_busy)
        self._build()

    # ----- building ------------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)

        top = QHBoxLayout()
        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(28)  # the top row fits a 1000-pixel window
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setToolTip("A finished (or stopped) Phase 2 run of this workspace")
        self.open_run_button = QPushButton("Open run folder…")
        self.refresh_runs_button = QPushButton("Refresh")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.hide()
        self.progress_label = QLabel("")
        self.progress_label.setProperty("role", "hint")
        # Two lines at most instead of one long one: on one line it widened the tab past a
        # 1000-pixel window while the run loaded.
        self.progress_label.setWordWrap(True)
        self.progress_label.setMinimumWidth(120)
        self.export_button = QPushButton("Export view…")
        self.export_button.setToolTip("Save this view as a PNG and its numbers as JSON")
        self.export_button.setEnabled(False)
        top.addWidget(QLabel("Phase 2 run:"))
        top.addWidget(self.run_combo, 1)
        top.addWidget(self.open_run_button)
        top.addWidget(self.refresh_runs_button)
        top.addWidget(self.progress_bar)
        top.addWidget(self.progress_label, 1)
        top.addWidget(self.export_button)
        outer.addLayout(top)
        self.message = MessageLabel()
        outer.addWidget(self.message)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_inputs())
        splitter.addWidget(self._build_results())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([330, 900])
        outer.addWidget(splitter, 1)

        self.run_combo.currentIndexChanged.connect(self._run_changed)
        self.open_run_button.clicked.connect(self._open_run_folder)
        self.refresh_runs_button.clicked.connect(self.refresh_runs)
        self.export_button.clicked.connect(self._export_clicked)
        self._typing_timer = QTimer(self, singleShot=True, interval=TYPING_DEBOUNCE_MS)
        self._typing_timer.timeout.connect(self.analyze_now)
        self._slider_timer = QTimer(self, singleShot=True, interval=SLIDER_DEBOUNCE_MS)
        self._slider_timer.timeout.connect(self.analyze_now)

    # ----- window hooks ----------------------------------------------------------------------

    def set_workspace(self, workspace) -> None:
        self.workspace = workspace
        self.picker.set_workspace(workspace)
        self.compare_picker.set_workspace(workspace)
        self.chat_panel.set_workspace(workspace)
        self.blind_panel.set_workspace(workspace)
        self.refresh_runs()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self._ensure_style_map()
        if self.workspace is not None and not event.spontaneous():
            self.refresh_runs()  # a Phase 2 run may have finished since the tab was last shown
            if not self.chat_panel.is_busy():
                self.chat_panel.refresh_adapters()  # and a Phase 1 adapter too
                self.blind_panel.refresh_adapters()  # or an evaluation
        if self._load_when_shown:
            self._load_when_shown = False
            QTimer.singleShot(0, self._run_changed)

    def shutdown(self) -> None:
        self._typing_timer.stop()
        self._slider_timer.stop()
        self.chat_panel.shutdown()
        self.controller.shutdown()

    # ----- progress and failures -------------------------------------------------------------

    def _on_progress(self, text: str, fraction) -> None:
        self.progress_label.setText(text)
        if fraction is None:
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * max(0.0, min(1.0, fraction))))

    def _on_busy(self, busy: bool) -> None:
        self.progress_bar.setVisible(busy)
        if not busy:
            self.progress_label.setText("")

    def _on_failed(self, text: str) -> None:
        self.message.show_error(text)
