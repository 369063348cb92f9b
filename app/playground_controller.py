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

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from cognitivetwin_core.conversation import ROLES, Conversation, Message
from cognitivetwin_core.errors import CancelledError, CognitiveTwinError
from cognitivetwin_core.trajectory import TurnTrajectory, annotate

from .background_job import BackgroundJob

log = logging.getLogger(__name__)

MAP_MAX_POINTS = 5000  # the style map samples larger workspaces evenly
NEIGHBOURS_PER_STEP = 3
RUNS_KEPT_LOADED = 2  # the current run and a compared one


# ----- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunChoice:
    run_dir: Path
    label: str
    opened_by_hand: bool = False

    @classmethod
    def from_folder(cls, folder: str | Path, label: str | None = None, opened_by_hand: bool = True) -> "RunChoice":
        """A run folder holding a Phase 2 model (raises InputError, with what to do, if not)."""
        from cognitivetwin_core.twin_model import read_components_config

        folder = Path(folder).expanduser().resolve()
        config = read_components_config(folder)
        base = Path(str(config.base_model)).name or str(config.base_model)
        return cls(folder, label or f"{folder.name} · base {base}", opened_by_hand)


def list_runs(workspace) -> list[RunChoice]:
    """The workspace's Phase 2 runs that left a usable model, newest first."""
    from cognitivetwin_core.twin_model import CONFIG_NAME, WEIGHTS_NAME

    choices = []
    for record in reversed(workspace.phase2_runs()):
        output = record.get("output_dir")
        if not output:
            continue
        folder = Path(output)
        if not ((folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()):
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
    text: str
    context: list[Message]
    role: str
    trajectory: TurnTrajectory
    source: tuple[str, int] | None = None  # (conversation id, turn index) of a workspace message
    labels: tuple[str, ...] = ()
    label_kind: str = ""  # "data" (explicit labels in the file) or "rules" (the weak labeler)
    trajectory_edited: bool = False
    slot: str = "main"
    serial: int = 0

    @classmethod
    def for_workspace_message(cls, run_dir, conversation: Conversation, turn_index: int, annotation) -> "AnalysisRequest":
        message = conversation.messages[turn_index]
        return cls(
            run_dir=Path(run_dir),
            text=message.content,
            context=list(conversation.messages[:turn_index]),
            role=message.role,
            trajectory=annotation.trajectory,
            source=(conversation.id, turn_index),
            labels=tuple(annotation.patterns),
            label_kind="data" if message.patterns is not None else "rules",
        )

    @classmethod
    def for_typed_text(cls, run_dir, text: str, context: list[Message], role: str = "user") -> "AnalysisRequest":
        conversation = Conversation(id="typed", source="playground", messages=[*context, Message(role=role, content=text)])
        return cls(run_dir=Path(run_dir), text=text, context=list(context), role=role, trajectory=annotate(conversation)[-1])

    def with_trajectory(self, coordinates, phase_id: int) -> "AnalysisRequest":
        coordinates = tuple(float(c) for c in coordinates)
        trajectory = TurnTrajectory(coordinates, int(phase_id), coordinates[2], self.trajectory.turn_index)
        return replace(self, trajectory=trajectory, trajectory_edited=True)

    def under_run(self, run_dir) -> "AnalysisRequest":
        return replace(self, run_dir=Path(run_dir))


@dataclass
class AnalysisResult:
    request: AnalysisRequest
    analysis: object  # cognitivetwin_core.analysis.Analysis
    measured: dict[str, float]  # stylometric features measured on the text
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


def signature_cosine(a, b) -> float:
    dot = sum(float(x) * float(y) for x, y in zip(a, b))
    norm = math.sqrt(sum(float(x) ** 2 for x in a)) * math.sqrt(sum(float(y) ** 2 for y in b))
    return dot / norm if norm else 0.0


def result_numbers(result: AnalysisResult) -> dict:
    """The numbers of one result, as exported to JSON."""
    request, analysis = result.request, result.analysis
    return {
        "run_dir": str(request.run_dir),
        "source": {"conversation_id": request.source[0], "turn_index": request.source[1]} if request.source else None,
        "role": request.role,
        "text": request.text,
        "context_messages": len(request.context),
        "trajectory": {**request.trajectory.to_dict(), "edited": request.trajectory_edited},
        "labels": {"patterns": list(request.labels), "kind": request.label_kind},
        "pattern_probabilities": dict(analysis.pattern_probabilities),
        "style_signature": [float(v) for v in analysis.style_signature],
        "stylometric_readout": dict(analysis.stylometrics),
        "stylometrics_measured": dict(result.measured),
        "plan_steps": [
            [
                {"score": score, "conversation_id": cid, "turn_index": turn, "role": role, "text": text}
                for score, cid, turn, role, text in step
            ]
            for step in result.plan_rows
        ],
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


class PlaygroundSession:
    def __init__(self):
        self.loaded: dict[Path, LoadedRun] = {}

    def ensure_loaded(self, run_dir: Path, workspace_path, progress, cancelled) -> tuple[LoadedRun, bool]:
        """(the loaded run, whether it was loaded now)."""
        run_dir = Path(run_dir)
        if run_dir in self.loaded:
            loaded = self.loaded.pop(run_dir)
            self.loaded[run_dir] = loaded  # most recently used last
            return loaded, False
        loaded = load_run(run_dir, workspace_path, progress, cancelled)
        self.loaded[run_dir] = loaded
        while len(self.loaded) > RUNS_KEPT_LOADED:
            self.loaded.pop(next(iter(self.loaded)))
        return loaded, True

    def analyze(self, loaded: LoadedRun, request: AnalysisRequest) -> AnalysisResult:
        from cognitivetwin_core.stylometrics import stylometric_dict

        started = time.perf_counter()
        analysis = analyze_request(loaded, request)
        seconds = time.perf_counter() - started
        return AnalysisResult(
            request=request,
            analysis=analysis,
            measured=stylometric_dict(request.text),
            plan_rows=plan_rows(analysis),
            seconds=seconds,
        )


def _check(cancelled) -> None:
    if cancelled():
        raise CancelledError("Cancelled.")


def load_run(run_dir: Path, workspace_path, progress, cancelled) -> LoadedRun:
    """Load the twin of `run_dir`, index the workspace's messages, and sign them for the map."""
    from cognitivetwin_core import analysis

    progress(("Loading the base model and the Phase 2 components…", None))
    model = analysis.load_model(run_dir, device="cpu")
    _check(cancelled)
    neighbours = None
    map_signatures, map_points, sampled = _empty_map()
    if workspace_path is not None:
        from cognitivetwin_core.workspace import Workspace

        progress(("Reading the workspace's messages (pooled features are cached)…", None))
        with Workspace.open(workspace_path) as workspace:
            neighbours = analysis.NeighbourIndex.from_workspace(workspace, model, should_stop=cancelled)
        _check(cancelled)
        progress(("Signing the workspace's messages for the style map…", None))
        map_signatures, map_points, sampled = map_of(model, neighbours)
    return LoadedRun(Path(run_dir), model, neighbours, map_signatures, map_points, sampled)


def _empty_map():
    import numpy as np

    return np.zeros((0, 1)), [], False


def map_of(model, neighbours):
    """Signatures of (a sample of) the indexed messages, with their own trajectories."""
    import numpy as np
    import torch

    from cognitivetwin_core.trajectory import annotate

    from .widgets.style_map import MapPoint

    conversations = neighbours.conversations
    coords, phases, homogeneity, points = [], [], [], []
    for conversation in conversations:
        for turn, message in zip(annotate(conversation), conversation.messages):
            coords.append(turn.coordinates)
            phases.append(turn.phase_id)
            homogeneity.append(turn.homogeneity)
            points.append(MapPoint(conversation.id, turn.turn_index, message.role, message.content))
    rows = np.arange(len(points))
    sampled = len(rows) > MAP_MAX_POINTS
    if sampled:
        rows = np.linspace(0, len(points) - 1, MAP_MAX_POINTS).round().astype(int)
    with torch.no_grad():
        output = model(
            hidden_states=neighbours.pooled[rows],
            trajectory_coords=torch.tensor([coords[i] for i in rows], dtype=torch.float32),
            phase_id=torch.tensor([phases[i] for i in rows]),
            homogeneity=torch.tensor([homogeneity[i] for i in rows], dtype=torch.float32),
        )
    return output.style_signature.cpu().numpy().astype(np.float64), [points[i] for i in rows], sampled


def analyze_request(loaded: LoadedRun, request: AnalysisRequest):
    from cognitivetwin_core import analysis

    return analysis.analyze(
        request.text, request.context, loaded.model, trajectory=request.trajectory,
        neighbours_index=loaded.neighbours, role=request.role, top_k=NEIGHBOURS_PER_STEP,
    )


def plan_rows(analysis) -> list[list[tuple]]:
    return [
        [(float(n.score), n.conversation_id, int(n.turn_index), n.role, n.text) for n in step.neighbours]
        for step in analysis.plan_steps
    ]


def run_task(progress, cancelled, session: PlaygroundSession, kind: str, run_dir, workspace_path, request):
    """The BackgroundJob function: load a run, or analyse a request (loading its run first)."""
    loaded, fresh = session.ensure_loaded(run_dir, workspace_path, progress, cancelled)
    if fresh:
        progress(("loaded", loaded))
    if kind == "load":
        return ("loaded", None)
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
        self.job.wait()

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
        if task[1] not in self.session.loaded:
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

    @Slot(object)
    def _on_failed(self, exc) -> None:
        if isinstance(exc, CognitiveTwinError):
            self.failed.emit(str(exc))
            return
        self.failed.emit(f"The analysis failed unexpectedly ({type(exc).__name__}: {exc}). Details are in the log.")
        from .errors_dialog import report_unexpected

        report_unexpected(exc, context="playground")
