"""The Playground's model work, Qt-free (the app runs it in a child process,
playground/analysis_process.py).

`PlaygroundSession` holds what is loaded: per Phase 2 run, the twin (base +
components, through the core's cached loader), the neighbour index over the workspace's
messages and the signatures of those messages for the style map. It is only ever used by
one task at a time. What leaves it (`RunLoaded` with a `RunMap`, `AnalysisResult`) holds
plain values, no model: it crosses to the window's process, which never imports torch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cognitivetwin_core.annotation.trajectory import PHASE_NAMES, TurnTrajectory, annotate
from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.conversation import ROLES, Conversation, Message
from cognitivetwin_core.phase2.components_folder import holds_components, read_components_config
from cognitivetwin_core.phase2.runs import feature_cache_dir

log = logging.getLogger(__name__)

MAP_MAX_POINTS = 5000  # the style map samples larger workspaces evenly
NEIGHBOURS_PER_STEP = 3
RUNS_KEPT_LOADED = 2  # the current run and a compared one


# ----- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapPoint:
    """One message on the style map."""

    conversation_id: str
    turn_index: int
    role: str
    text: str
    person: bool = False  # the person's own message (the run's twin speaker): ringed on the map

    @property
    def key(self) -> tuple[str, int]:
        return self.conversation_id, self.turn_index


@dataclass(frozen=True)
class RunChoice:
    run_dir: Path
    label: str
    opened_by_hand: bool = False
    # The saved model's validation metrics (for choosing the run to open first); not identity.
    metrics: dict | None = field(default=None, compare=False, hash=False)

    @classmethod
    def from_folder(cls, folder: str | Path, label: str | None = None, opened_by_hand: bool = True) -> RunChoice:
        """A run folder holding a Phase 2 model (raises InputError, with what to do, if not)."""
        folder = Path(folder).expanduser().resolve()
        config = read_components_config(folder)
        base = str(config.get("base_model", "?"))
        return cls(folder, label or f"{folder.name} · base {Path(base).name or base}", opened_by_hand)


def model_runs(workspace) -> list[RunChoice]:
    """The workspace's Phase 2 runs that left a usable model, newest first, by their names."""
    from cognitivetwin_core.phase2.run_names import run_name
    from cognitivetwin_core.phase2.runs import RUN_FILE, read_json

    choices = []
    for record in reversed(workspace.phase2_runs()):
        output = record.get("output_dir")
        if not output:
            continue
        folder = Path(output)
        if not holds_components(folder):
            continue
        record = {**record, **(read_json(folder / RUN_FILE) or {})}  # the folder has the latest name
        outcome = record.get("outcome") or record.get("status") or "?"
        metrics = record.get("final_metrics") or {}
        f1 = metrics.get("pattern_macro_f1")
        label = f"{run_name(record)} · {outcome}"
        if isinstance(f1, (int, float)):
            label += f" · pattern F1 {f1:.2f}"
        choices.append(RunChoice(folder.resolve(), label, metrics=metrics or None))
    return choices


def preferred_run(choices: list[RunChoice]) -> int:
    """The run to open first: the best finished one (phase2.verdicts.run_score), not merely
    the newest, which may be a run that overfitted or learned nothing; 0 if none has metrics."""
    from cognitivetwin_core.phase2.verdicts import best_run_index

    best = best_run_index([choice.metrics for choice in choices])
    return 0 if best is None else best


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
    # per step: (score, conversation_id, turn_index, writer, text); writer: the participant's
    # name, else the role (`twin_speaker.speaker_key`), compared with the twin speaker to say "you"
    plan_rows: list[list[tuple]]
    seconds: float


def describe_source(request: AnalysisRequest, with_run: bool = False, who: str | None = None) -> str:
    """The analysed message in words. `who`: "you" or "them" where the caller knows the
    person (the app does); else the message's role. Messages are numbered from 1."""
    who = who or request.role
    if request.source is not None:
        text = f"{request.source[0]}, message {request.source[1] + 1} ({who})"
    else:
        text = f"a typed message ({who}) after {len(request.context)} context message(s)"
    preview = " ".join(request.text.split())
    text += f": “{preview[:80]}{'…' if len(preview) > 80 else ''}”"
    # Where the message sits, in words; the five numbers are on the sliders beside it.
    depth, phase_id = request.trajectory.coordinates[0], request.trajectory.phase_id
    text += f"  ·  {depth:.0%} of the way into the conversation, {PHASE_NAMES[phase_id]}"
    if request.trajectory_edited:
        text += " (position changed by hand)"
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

    def run_map(self) -> RunMap:
        return RunMap(self.run_dir, self.map_signatures, self.map_points, self.map_sampled)


@dataclass(frozen=True)
class RunMap:
    """What the window shows of a loaded run: its style map (no model: it crosses processes)."""

    run_dir: Path
    map_signatures: object  # numpy float array [points, 256]
    map_points: list  # MapPoint per row
    map_sampled: bool = False


# What `run_task` reports to its `progress` and returns (typed, never tuples told apart by their first item).


@dataclass(frozen=True)
class LoadProgress:
    """A step of loading a run: words for the person, and how far (0 to 1) when known."""

    text: str
    fraction: float | None = None


@dataclass(frozen=True)
class RunLoaded:
    """A run is ready: the result of a load, and a progress event when an analysis loaded its run."""

    loaded: RunMap


class PlaygroundSession:
    """Loaded runs, keyed by (run folder, workspace): the neighbour index is the workspace's."""

    def __init__(self):
        self.loaded: dict[tuple[Path, str], LoadedRun] = {}

    @staticmethod
    def key(run_dir, workspace_path) -> tuple[Path, str]:
        return Path(run_dir), str(workspace_path)

    def find(self, run_dir, workspace_path) -> LoadedRun | None:
        return self.loaded.get(self.key(run_dir, workspace_path))

    def ensure_loaded(
        self, run_dir: Path, workspace_path, progress, cancellation: Cancellation
    ) -> tuple[LoadedRun, bool]:
        """(the loaded run, whether it was loaded now)."""
        key = self.key(run_dir, workspace_path)
        if key in self.loaded:
            loaded = self.loaded.pop(key)
            self.loaded[key] = loaded  # most recently used last
            return loaded, False
        loaded = load_run(Path(run_dir), workspace_path, progress, cancellation)
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


def _check(cancellation: Cancellation) -> None:
    cancellation.raise_if_cancelled("Cancelled.")


def load_run(run_dir: Path, workspace_path, progress, cancellation: Cancellation) -> LoadedRun:
    """Load the twin of `run_dir`, index the workspace's messages, and sign them for the map."""
    from cognitivetwin_core.playground.analysis import NeighbourIndex, load_playground_model

    progress(LoadProgress("Loading the base model and the Phase 2 components…"))
    model = load_playground_model(run_dir, device="auto")
    _check(cancellation)
    if workspace_path is None:
        return LoadedRun(Path(run_dir), model, None, *_empty_map())
    from cognitivetwin_core.data.workspace import Workspace

    with Workspace.open(workspace_path) as workspace:
        conversations = [c for c in workspace.iter_conversations() if c.messages]
        cache_root = feature_cache_root(run_dir, workspace)
    if not conversations:
        return LoadedRun(Path(run_dir), model, None, *_empty_map())

    def encoding_progress(done: int, total: int, _tokens: int) -> None:
        _check(cancellation)  # raising here stops the encoding; the cache only keeps whole entries
        progress(
            LoadProgress(
                f"Encoding the workspace's messages: {done:,} of {total:,} (once; then cached)",
                done / total if total else None,
            )
        )

    progress(LoadProgress("Reading the workspace's pooled features…"))
    neighbours = NeighbourIndex.build(model, conversations, cache_dir=cache_root, progress=encoding_progress)
    _check(cancellation)
    progress(LoadProgress("Signing the workspace's messages for the style map…"))
    rows = {(entry.conversation_id, entry.message_index): row for row, entry in enumerate(neighbours.entries)}
    return LoadedRun(Path(run_dir), model, neighbours, *map_of(model, neighbours), rows_by_message=rows)


def feature_cache_root(run_dir, workspace) -> Path:
    """Where the run's training features are (a cache hit when it trained on this workspace)."""
    found = feature_cache_dir(run_dir)
    if found is not None:
        return found
    return workspace.cache_dir / "phase2-features"


def _empty_map():
    import numpy as np

    return np.zeros((0, 1)), [], False


def map_of(model, neighbours):
    """Signatures of (an even sample of) the indexed messages at their own trajectories."""
    import numpy as np

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
        [(float(n.score), n.conversation_id, int(n.message_index), n.speaker or n.role, n.text) for n in step]
        for step in analysis.plan_steps
    ]


@dataclass(frozen=True)
class PlaygroundTask:
    """Load a run (`kind` "load"), or analyse `request` under it ("analyze")."""

    kind: str
    run_dir: Path
    workspace_path: str | None
    request: AnalysisRequest | None = None


def run_task(progress, cancellation: Cancellation, session: PlaygroundSession, task: PlaygroundTask):
    """Load a run, or analyse a request (loading its run first): `RunLoaded` or `AnalysisResult`.
    `progress` receives `LoadProgress` and, when an analysis loaded its run, `RunLoaded`."""
    loaded, fresh = session.ensure_loaded(task.run_dir, task.workspace_path, progress, cancellation)
    if task.kind == "load":
        return RunLoaded(loaded.run_map())  # also when it was loaded before: the tab redraws its map
    request = task.request
    if fresh:
        progress(RunLoaded(loaded.run_map()))
    _check(cancellation)
    return session.analyze(loaded, request)
