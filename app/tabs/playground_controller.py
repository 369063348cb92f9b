"""The Playground tab's model work, off the GUI thread.

`PlaygroundSession` is Qt-free and holds what is loaded: per Phase 2 run, the twin (base +
components, through the core's cached loader), the neighbour index over the workspace's
messages and the signatures of those messages for the style map. It is only ever used by
one job at a time.

`PlaygroundController` (GUI thread) runs the session's work on a `BackgroundJob`, one task
at a time, and coalesces requests: while a task runs, only the newest pending request of
each slot ("main", "compare") is kept, so dragging a slider or typing never queues stale
work. Signals: `progress(text, fraction|None)`, `runLoaded(LoadedRun)`,
`resultReady(AnalysisResult)`, `failed(message)`, `busyChanged(bool)`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.qt.background_job import BackgroundJob
from cognitivetwin_core.annotation.trajectory import TurnTrajectory, annotate
from cognitivetwin_core.conversation import ROLES, Conversation, Message
from cognitivetwin_core.errors import CancelledError, CognitiveTwinError

log = logging.getLogger(__name__)

MAP_MAX_POINTS = 5000  # the style map samples larger workspaces evenly
NEIGHBOURS_PER_STEP = 3
RUNS_KEPT_LOADED = 2  # the current run and a compared one


# ----- runs ------------------------------------------------------------------------------------


# A Phase 2 output folder (cognitivetwin_core.phase2.twin_model's file names; not imported from
# there because that module imports torch, and the run list is built on the GUI thread).
COMPONENTS_CONFIG = "config.json"
COMPONENTS_WEIGHTS = "model.safetensors"
COMPONENTS_FORMAT = "cognitivetwin-v2-components"


def read_run_config(folder: Path) -> dict:
    """The components config of a Phase 2 output folder; InputError, saying what to do, if it is not one."""
    from cognitivetwin_core.errors import InputError

    config_path = folder / COMPONENTS_CONFIG
    if not config_path.is_file() or not (folder / COMPONENTS_WEIGHTS).is_file():
        raise InputError(
            f"{folder} holds no Phase 2 model (it needs {COMPONENTS_CONFIG} and {COMPONENTS_WEIGHTS}): "
            "choose the output folder of a finished Phase 2 run."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{config_path} cannot be read ({exc}): choose another run folder.") from None
    if not isinstance(config, dict) or config.get("format") != COMPONENTS_FORMAT:
        raise InputError(
            f"{config_path} is not a CognitiveTwin Phase 2 model config: choose a Phase 2 run's output folder."
        )
    return config


@dataclass(frozen=True)
class RunChoice:
    run_dir: Path
    label: str
    opened_by_hand: bool = False

    @classmethod
    def from_folder(cls, folder: str | Path, label: str | None = None, opened_by_hand: bool = True) -> RunChoice:
        """A run folder holding a Phase 2 model (raises InputError, with what to do, if not)."""
        folder = Path(folder).expanduser().resolve()
        config = read_run_config(folder)
        base = str(config.get("base_model", "?"))
        return cls(folder, label or f"{folder.name} · base {Path(base).name or base}", opened_by_hand)


def list_runs(workspace) -> list[RunChoice]:
    """The workspace's Phase 2 runs that left a usable model, newest first."""
    choices = []
    for record in reversed(workspace.phase2_runs()):
        output = record.get("output_dir")
        if not output:
            continue
        folder = Path(output)
        if not ((folder / COMPONENTS_CONFIG).is_file() and (folder / COMPONENTS_WEIGHTS).is_file()):
            continue
        outcome = record.get("outcome") or record.get("status") or "?"
        metrics = record.get("final_metrics") or {}
        f1 = metrics.get("pattern_macro_f1")
        when = (record.get("ended_at") or record.get("started_at") or "")[:16].replace("T", " ")
        label = f"{record.get('run_id', folder.name)} · {outcome} · {when}"
        if isinstance(f1, (int, float)):
            label += f" · pattern F1 {f1:.2f}"
        choices.append(RunChoice(folder.resolve(), label))
    return choices


# ----- requests and results --------------------------------------------------------------------


@dataclass
class AnalysisRequest:
    run_dir: Path
    message: Message  # with its explicit pattern labels, if the data has them
    context: list[Message]
    trajectory: TurnTrajectory
    source: tuple[str, int] | None = None  # (conversation id, turn index) of a workspace message
    trajectory_edited: bool = False
    slot: str = "main"
    serial: int = 0

    @property
    def text(self) -> str:
        return self.message.content

    @property
    def role(self) -> str:
        return self.message.role

    @property
    def label_kind(self) -> str:
        """ "data" when the message carries explicit labels, else "rules" (the weak labeler's)."""
        return "data" if self.message.patterns is not None else "rules"

    @classmethod
    def for_workspace_message(cls, run_dir, conversation: Conversation, turn_index: int, annotation) -> AnalysisRequest:
        return cls(
            run_dir=Path(run_dir),
            message=conversation.messages[turn_index],
            context=list(conversation.messages[:turn_index]),
            trajectory=annotation.trajectory,
            source=(conversation.id, turn_index),
        )

    @classmethod
    def for_typed_text(cls, run_dir, text: str, context: list[Message], role: str = "user") -> AnalysisRequest:
        message = Message(role=role, content=text)
        conversation = Conversation(id="typed", source="playground", messages=[*context, message])
        return cls(run_dir=Path(run_dir), message=message, context=list(context), trajectory=annotate(conversation)[-1])

    def with_trajectory(self, coordinates, phase_id: int) -> AnalysisRequest:
        coordinates = tuple(float(c) for c in coordinates)
        trajectory = TurnTrajectory(coordinates, int(phase_id), coordinates[2], self.trajectory.turn_index)
        return replace(self, trajectory=trajectory, trajectory_edited=True)

    def under_run(self, run_dir) -> AnalysisRequest:
        return replace(self, run_dir=Path(run_dir))


@dataclass
class AnalysisResult:
    request: AnalysisRequest
    analysis: object  # cognitivetwin_core.playground.analysis.Analysis
    plan_rows: list[list[tuple]]  # per step: (score, conversation_id, turn_index, role, text)
    seconds: float


def describe_source(request: AnalysisRequest, with_run: bool = False) -> str:
    if request.source is not None:
        text = f"{request.source[0]} #{request.source[1]} ({request.role})"
    else:
        text = f"typed {request.role} message after {len(request.context)} context message(s)"
    preview = " ".join(request.text.split())
    text += f": “{preview[:80]}{'…' if len(preview) > 80 else ''}”"
    coords = ", ".join(f"{c:.2f}" for c in request.trajectory.coordinates)
    text += f"  ·  trajectory ({coords}), phase {request.trajectory.phase_id}{' (edited)' if request.trajectory_edited else ''}"
    if with_run:
        text += f"  ·  run {request.run_dir.name}"
    return text


def parse_context(text: str, before_role: str = "user") -> list[Message]:
    """Typed context: one message per paragraph; a leading 'user:'/'assistant:'/... sets the role,
    unmarked paragraphs alternate user/assistant so the last one precedes `before_role`."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    parsed: list[tuple[str | None, str]] = []
    for paragraph in paragraphs:
        head, sep, rest = paragraph.partition(":")
        if sep and head.strip().lower() in ROLES and rest.strip():
            parsed.append((head.strip().lower(), rest.strip()))
        else:
            parsed.append((None, paragraph))
    messages: list[Message] = []
    following = before_role
    for role, content in reversed(parsed):
        if role is None:
            role = "assistant" if following == "user" else "user"
        messages.append(Message(role=role, content=content))
        following = role
    return list(reversed(messages))


def result_numbers(result: AnalysisResult) -> dict:
    """The numbers of one result, as exported to JSON: the core's Analysis and where it came from."""
    request = result.request
    return {
        "run_dir": str(request.run_dir),
        "source": {"conversation_id": request.source[0], "turn_index": request.source[1]} if request.source else None,
        "context_messages": len(request.context),
        "trajectory_edited": request.trajectory_edited,
        "label_kind": request.label_kind,
        **result.analysis.to_dict(),
        "seconds": result.seconds,
    }


# ----- the session (worker thread, Qt-free) ---------------------------------------------------


@dataclass
class LoadedRun:
    run_dir: Path
    model: object
    neighbours: object
    map_signatures: object  # float array [points, 256]
    map_points: list = field(default_factory=list)  # MapPoint per row
    map_sampled: bool = False
    rows_by_message: dict = field(default_factory=dict)  # (conversation id, index) -> index row


class PlaygroundSession:
    """Loaded runs, keyed by (run folder, workspace): the neighbour index is the workspace's."""

    def __init__(self):
        self.loaded: dict[tuple[Path, str], LoadedRun] = {}

    @staticmethod
    def key(run_dir, workspace_path) -> tuple[Path, str]:
        return Path(run_dir), str(workspace_path)

    def find(self, run_dir, workspace_path) -> LoadedRun | None:
        return self.loaded.get(self.key(run_dir, workspace_path))

    def ensure_loaded(self, run_dir: Path, workspace_path, progress, cancelled) -> tuple[LoadedRun, bool]:
        """(the loaded run, whether it was loaded now)."""
        key = self.key(run_dir, workspace_path)
        if key in self.loaded:
            loaded = self.loaded.pop(key)
            self.loaded[key] = loaded  # most recently used last
            return loaded, False
        loaded = load_run(Path(run_dir), workspace_path, progress, cancelled)
        self.loaded[key] = loaded
        while len(self.loaded) > RUNS_KEPT_LOADED:
            self.loaded.pop(next(iter(self.loaded)))
        return loaded, True

    def analyze(self, loaded: LoadedRun, request: AnalysisRequest) -> AnalysisResult:
        from cognitivetwin_core.playground.analysis import analyze

        started = time.perf_counter()
        # A workspace message (source) takes its pooled state from the neighbour index (the
        # feature cache: no base forward) and is left out of its own plan-step neighbours.
        analysis = analyze(
            request.message,
            request.context,
            loaded.model,
            trajectory=request.trajectory,
            neighbours_index=loaded.neighbours,
            top_k=NEIGHBOURS_PER_STEP,
            source=request.source,
        )
        seconds = time.perf_counter() - started
        return AnalysisResult(request=request, analysis=analysis, plan_rows=plan_rows(analysis), seconds=seconds)


def _check(cancelled) -> None:
    if cancelled():
        raise CancelledError("Cancelled.")


def load_run(run_dir: Path, workspace_path, progress, cancelled) -> LoadedRun:
    """Load the twin of `run_dir`, index the workspace's messages, and sign them for the map."""
    from cognitivetwin_core.playground.analysis import NeighbourIndex, load_playground_model

    progress(("Loading the base model and the Phase 2 components…", None))
    model = load_playground_model(run_dir, device="auto")
    _check(cancelled)
    if workspace_path is None:
        return LoadedRun(Path(run_dir), model, None, *_empty_map())
    from cognitivetwin_core.data.workspace import Workspace

    with Workspace.open(workspace_path) as workspace:
        conversations = [c for c in workspace.iter_conversations() if c.messages]
        cache_root = feature_cache_root(run_dir, workspace)
    if not conversations:
        return LoadedRun(Path(run_dir), model, None, *_empty_map())

    def encoding_progress(done: int, total: int, _tokens: int) -> None:
        _check(cancelled)  # raising here stops the encoding; the cache only keeps whole entries
        progress(
            (
                f"Encoding the workspace's messages: {done:,} of {total:,} (once; then cached)",
                done / total if total else None,
            )
        )

    progress(("Reading the workspace's pooled features…", None))
    neighbours = NeighbourIndex.build(model, conversations, cache_dir=cache_root, progress=encoding_progress)
    _check(cancelled)
    progress(("Signing the workspace's messages for the style map…", None))
    rows = {(entry.conversation_id, entry.message_index): row for row, entry in enumerate(neighbours.entries)}
    return LoadedRun(Path(run_dir), model, neighbours, *map_of(model, neighbours), rows_by_message=rows)


def feature_cache_root(run_dir, workspace) -> Path:
    """Where the run's training features are (a cache hit when it trained on this workspace)."""
    record_path = Path(run_dir) / "run.json"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        entry = (record.get("feature_cache") or {}).get("path")
    except (OSError, ValueError):
        entry = None
    if entry and Path(entry).parent.is_dir():
        return Path(entry).parent
    return workspace.cache_dir / "phase2-features"


def _empty_map():
    import numpy as np

    return np.zeros((0, 1)), [], False


def map_of(model, neighbours):
    """Signatures of (an even sample of) the indexed messages at their own trajectories."""
    import numpy as np

    from app.widgets.style_map import MapPoint

    signatures = np.asarray(neighbours.signatures(model), dtype=np.float64)
    rows = np.arange(len(neighbours))
    sampled = len(rows) > MAP_MAX_POINTS
    if sampled:
        rows = np.unique(np.linspace(0, len(rows) - 1, MAP_MAX_POINTS).round().astype(int))
    points = []
    for i in rows:
        entry = neighbours.entry(int(i))
        points.append(MapPoint(entry.conversation_id, entry.message_index, entry.role, entry.text, entry.person))
    return signatures[rows], points, sampled


def plan_rows(analysis) -> list[list[tuple]]:
    return [
        [(float(n.score), n.conversation_id, int(n.message_index), n.role, n.text) for n in step]
        for step in analysis.plan_steps
    ]


def run_task(progress, cancelled, session: PlaygroundSession, kind: str, run_dir, workspace_path, request):
    """The BackgroundJob function: load a run, or analyse a request (loading its run first)."""
    loaded, fresh = session.ensure_loaded(run_dir, workspace_path, progress, cancelled)
    if kind == "load":
        return ("loaded", loaded)  # also when it was loaded before: the tab redraws its map
    if fresh:
        progress(("loaded", loaded))
    _check(cancelled)
    return ("result", session.analyze(loaded, request))


# ----- the controller (GUI thread) ------------------------------------------------------------


class PlaygroundController(QObject):
    progress = Signal(str, object)
    runLoaded = Signal(object)
    resultReady = Signal(object)
    failed = Signal(str)
    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.session = PlaygroundSession()
        self.job = BackgroundJob(self, name="playground")
        self.job.progress.connect(self._on_progress)
        self.job.succeeded.connect(self._on_succeeded)
        self.job.failed.connect(self._on_failed)
        self.job.finished.connect(self._next)
        self._pending_load: tuple | None = None
        self._pending: dict[str, tuple] = {}
        self._closing = False

    def load_run(self, run_dir, workspace_path) -> None:
        self._pending_load = (Path(run_dir), workspace_path)
        self._next()

    def request(self, request: AnalysisRequest, workspace_path) -> None:
        self._pending[request.slot] = (request, workspace_path)
        self._next()

    def is_busy(self) -> bool:
        return self.job.is_running()

    def shutdown(self) -> None:
        self._closing = True
        self._pending.clear()
        self._pending_load = None
        self.job.cancel()
        # A model load cannot be interrupted (cancel is checked between its steps); a
        # QThread destroyed while running aborts the process, so wait it out.
        if not self.job.wait(600_000):
            log.warning("the playground's background work did not stop within 10 minutes")

    @Slot()
    def _next(self) -> None:
        if self._closing or self.job.is_running():
            return
        if self._pending_load is not None:
            run_dir, workspace_path = self._pending_load
            self._pending_load = None
            task = ("load", run_dir, workspace_path, None)
        else:
            slot = next((s for s in ("main", "compare") if s in self._pending), None)
            if slot is None:
                self.busyChanged.emit(False)
                return
            request, workspace_path = self._pending.pop(slot)
            task = ("analyze", request.run_dir, workspace_path, request)
        if self.session.find(task[1], task[2]) is None:
            self.progress.emit("Loading the model…", None)
        self.busyChanged.emit(True)
        self.job.start(run_task, self.session, *task)

    @Slot(object)
    def _on_progress(self, tick) -> None:
        if isinstance(tick, tuple) and len(tick) == 2 and tick[0] == "loaded":
            self.runLoaded.emit(tick[1])
        elif isinstance(tick, tuple) and len(tick) == 2:
            self.progress.emit(str(tick[0]), tick[1])

    @Slot(object)
    def _on_succeeded(self, outcome) -> None:
        kind, value = outcome
        if kind == "result":
            self.resultReady.emit(value)
        elif kind == "loaded":
            self.runLoaded.emit(value)

    @Slot(object)
    def _on_failed(self, exc) -> None:
        from cognitivetwin_core.models.catalog import UnknownBaseModelError

        # A run whose base model is gone or unknown is fixable by the user (it is a
        # ValueError in the core, not a CognitiveTwinError): say it inline.
        if isinstance(exc, (CognitiveTwinError, UnknownBaseModelError)):
            self.failed.emit(str(exc))
            return
        self.failed.emit(f"The analysis failed unexpectedly ({type(exc).__name__}: {exc}). Details are in the log.")
        from app.dialogs.errors import report_unexpected

        report_unexpected(exc, context="playground")
