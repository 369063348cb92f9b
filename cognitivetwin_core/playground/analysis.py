"""What a trained twin sees in one message: the core of the playground.

    model = load_playground_model(model_dir, device="auto")        # base + adapter + components
    index = NeighbourIndex.for_run(model, model_dir)                # the run's training messages
    result = analyze("Why does this hang?", context, model, neighbours_index=index)
    result.style_signature        # 256 floats (L2-normalised)
    result.stylometrics           # {name: value the signature's regression axes predict}
    result.measured_stylometrics  # {name: value measured on the text}
    result.pattern_probabilities  # {pattern: probability}, the 12 in PATTERN_NAMES order
    result.pattern_labels         # the labels the data has (explicit, else the rule labeler's)
    result.plan_steps             # K lists of Neighbour(conversation_id, message_index, role, text, score):
                                  # step k predicts the turn k ahead (result.plan_horizons; phase2.verdicts.step_label)
    result.trajectory             # {"coordinates": [5], "phase_id", "phase_name", "homogeneity", "turn_index"}
    result.to_dict()              # JSON-able, for export

`analyze(message, context, model, *, trajectory=None, neighbours_index=None)`:
`message` is a str (role from `role=`, default "user") or a Message; `context` the earlier
messages of its conversation (None: it opens one); `trajectory` overrides the computed
position (a TurnTrajectory, or a dict with any of coordinates/phase_id/homogeneity), which is
how the playground's sliders move a message through its conversation.

The base's pooled state of (context, message) is cached on the model (LRU), so analysing the
same text again, or under other trajectory values, only runs the small components: well
under a second once the model is loaded. The neighbour index reads the run's pooled
features from the feature cache (a hit after training) and compares in the model's
standardised hidden space, where the plan steps live. `signature_map()` gives the 2-D PCA
of the index messages' signatures for the playground's map.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.errors import InputError

log = logging.getLogger(__name__)

_POOLED_CACHE_SIZE = 512


@dataclass
class Neighbour:
    conversation_id: str
    message_index: int
    role: str
    text: str
    score: float  # cosine similarity in the standardised hidden space
    speaker: str | None = None  # the participant's name where the source gives one


@dataclass
class Analysis:
    message: str
    role: str
    style_signature: list[float]
    stylometrics: dict[str, float]
    measured_stylometrics: dict[str, float]
    pattern_probabilities: dict[str, float]
    pattern_labels: list[str]
    plan_steps: list[list[Neighbour]]
    trajectory: dict
    plan_vectors: list[list[float]] = field(default_factory=list, repr=False)
    plan_horizons: list[int] = field(default_factory=list)  # step k looks plan_horizons[k-1] turns ahead

    def sorted_patterns(self) -> list[tuple[str, float]]:
        return sorted(self.pattern_probabilities.items(), key=lambda item: item[1], reverse=True)

    def cosine(self, other: Analysis) -> float:
        """Cosine similarity of two style signatures (both are unit vectors)."""
        return float(sum(a * b for a, b in zip(self.style_signature, other.style_signature)))

    def to_dict(self, include_plan_vectors: bool = False) -> dict:
        data = asdict(self)
        if not include_plan_vectors:
            data.pop("plan_vectors")
        return data


def load_playground_model(model_dir: str | Path, *, device: str = "auto"):
    """The CognitiveTwinV2 of a Phase 2 output folder, with the base (and adapter) it was trained on."""
    from cognitivetwin_core.phase2.twin_model import create_cognitivetwin_v2

    model = create_cognitivetwin_v2(components_dir=model_dir, load_base_model=True, device=device)
    model.eval()
    return model


def _trajectory_tensors(trajectory: dict, device):
    import torch

    coords = torch.tensor([list(trajectory["coordinates"])], dtype=torch.float32, device=device)
    phase = torch.tensor([int(trajectory["phase_id"])], dtype=torch.long, device=device)
    homogeneity = torch.tensor([float(trajectory["homogeneity"])], dtype=torch.float32, device=device)
    return coords, phase, homogeneity


def _resolve_trajectory(messages: list[Message], override) -> dict:
    from cognitivetwin_core.annotation.trajectory import PHASE_NAMES, annotate

    computed = annotate(Conversation("playground", "playground", messages))[-1].to_dict()
    if override is not None:
        given = override.to_dict() if hasattr(override, "to_dict") else dict(override)
        for key in ("coordinates", "phase_id", "homogeneity", "turn_index"):
            if key in given and given[key] is not None:
                computed[key] = given[key]
        if "homogeneity" in given and "coordinates" not in given:
            computed["coordinates"][2] = float(given["homogeneity"])
    computed["coordinates"] = [float(x) for x in computed["coordinates"]]
    if len(computed["coordinates"]) != 5:
        raise InputError("A trajectory needs 5 coordinates (depth, sibling_order, homogeneity, temporal, complexity).")
    phase_id = int(computed["phase_id"])
    if not 0 <= phase_id < len(PHASE_NAMES):
        raise InputError(f"phase_id must be 0..{len(PHASE_NAMES) - 1}, not {phase_id}.")
    computed["phase_name"] = PHASE_NAMES[phase_id]
    return computed


def pooled_state(model, messages: Sequence[Message], known=None):
    """The base's pooled state of the last message with the others as context (cached on the model).

    `known`: that state if the caller already has it (e.g. a neighbour index row, from the
    feature cache): it is cached and returned instead of running the base.
    """
    import numpy as np

    cache = getattr(model, "_pooled_cache", None)
    if cache is None:
        cache = OrderedDict()
        model._pooled_cache = cache
    key = Conversation("k", "k", list(messages)).content_hash()
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    if known is not None:
        vector = np.asarray(known, dtype=np.float32)
    else:
        vector = np.asarray(model.encode_conversation(list(messages))[-1], dtype=np.float32)
    cache[key] = vector
    while len(cache) > _POOLED_CACHE_SIZE:
        cache.popitem(last=False)
    return vector


def analyze(
    message: str | Message,
    context: Sequence[Message] | None = None,
    model=None,
    *,
    trajectory=None,
    neighbours_index: NeighbourIndex | None = None,
    role: str = "user",
    top_k: int = 3,
    pooled=None,
    source: tuple[str, int] | None = None,
) -> Analysis:
    """Analyse `message` after `context`.

    `pooled`: the message's pooled base state if the caller has it (skips the base forward).
    `source`: (conversation id, message index) of the message in `neighbours_index`; found
    there by text when not given. A message from the index takes its pooled state from it
    (the feature cache: no base forward) and is left out of its own plan-step neighbours.
    """
    import torch

    from cognitivetwin_core.annotation.patterns import PATTERN_NAMES, patterns_for
    from cognitivetwin_core.annotation.stylometrics import STYLOMETRIC_NAMES, stylometric_dict

    if model is None:
        raise InputError("analyze() needs a loaded model: load_playground_model(model_dir).")
    if isinstance(message, str):
        message = Message(role, message)
    if not (message.content or "").strip():
        raise InputError("Type a message to analyse (it is empty).")
    messages = [*(context or []), message]
    traj = _resolve_trajectory(messages, trajectory)
    if neighbours_index is not None:
        if source is None:
            source = neighbours_index.find(messages)
        if pooled is None and source is not None:
            pooled = neighbours_index.pooled_for(*source)
    pooled = pooled_state(model, messages, known=pooled)
    device = model.device
    coords, phase, homogeneity = _trajectory_tensors(traj, device)
    with torch.inference_mode():
        out = model(
            hidden_states=torch.from_numpy(pooled).unsqueeze(0).to(device),
            trajectory_coords=coords,
            phase_id=phase,
            homogeneity=homogeneity,
        )
    signature = out.style_signature[0].float().cpu()
    probabilities = torch.sigmoid(out.pattern_logits[0]).float().cpu().tolist()
    readout = out.stylometrics[0].float().cpu().tolist()
    plan = out.plan_steps[0].float().cpu()
    names = model.config.pattern_names or list(PATTERN_NAMES)
    stylo_names = model.config.stylometric_names or list(STYLOMETRIC_NAMES)
    return Analysis(
        message=message.content,
        role=message.role,
        style_signature=signature.tolist(),
        stylometrics=dict(zip(stylo_names, readout)),
        measured_stylometrics=stylometric_dict(message.content),
        pattern_probabilities=dict(zip(names, probabilities)),
        pattern_labels=patterns_for(message),
        plan_steps=neighbours_index.nearest(plan, top_k, exclude=source, turn_index=int(traj.get("turn_index") or 0))
        if neighbours_index is not None
        else [[] for _ in range(len(plan))],
        trajectory=traj,
        plan_vectors=plan.tolist(),
        plan_horizons=list(range(1, len(plan) + 1)),
    )


@dataclass
class _Entry:
    conversation_id: str
    message_index: int
    role: str
    text: str
    speaker: str | None = None
    person: bool = False  # one of the person's own messages (the run's twin speaker)


class NeighbourIndex:
    """The messages of a dataset as unit vectors in a model's standardised hidden space."""

    def __init__(self, vectors, entries: list[_Entry], pooled=None, trajectories=None):
        self.vectors = vectors  # torch float32 [N, hidden], unit rows
        self.entries = entries
        self._pooled = pooled  # torch float32 [N, hidden], raw pooled states
        self._trajectories = trajectories  # list of trajectory dicts
        self.person_speaker: str | None = None  # set by mark_person (from the run's person_style.json)

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def build(cls, model, conversations: Sequence[Conversation], *, cache_dir=None, progress=None) -> NeighbourIndex:
        import numpy as np
        import torch

        from cognitivetwin_core.annotation.trajectory import annotate
        from cognitivetwin_core.phase2.feature_cache import encode_with_cache
        from cognitivetwin_core.phase2.turn_encoder import EncodingSettings
        from cognitivetwin_core.phase2.twin_model import _pooling_settings

        conversations = [c for c in conversations if c.messages]
        if not conversations:
            raise InputError("The neighbour index needs at least one conversation with messages.")
        if model.base is None:
            raise InputError("The neighbour index needs the model's base loaded (load_playground_model).")
        settings = EncodingSettings(**_pooling_settings(model.config.encoding))
        if cache_dir is None:
            from cognitivetwin_core.phase2.feature_cache import default_cache_root

            cache_dir = default_cache_root()
        cached, _hit = encode_with_cache(
            conversations,
            base_model=model.config.base_model,
            adapter_dir=model.config.adapter,
            cache_dir=cache_dir,
            settings=settings,
            device=str(next(model.base.parameters()).device),
            tokenizer=model.tokenizer,
            model=model.base,
            progress=progress,
        )
        pooled = torch.from_numpy(np.asarray(cached.features, dtype=np.float32))
        entries, trajectories = [], []
        for conversation in conversations:
            for index, (message, turn) in enumerate(zip(conversation.messages, annotate(conversation))):
                entries.append(_Entry(conversation.id, index, message.role, message.content, message.speaker))
                trajectories.append(turn.to_dict())
        with torch.no_grad():
            z = model.components.standardize(pooled.to(model.device))
            vectors = torch.nn.functional.normalize(z, dim=-1).cpu()
        return cls(vectors, entries, pooled, trajectories)

    @classmethod
    def for_run(cls, model, model_dir: str | Path, *, progress=None) -> NeighbourIndex | None:
        """The index of the data a Phase 2 run trained on (from its run.json); None if unknown."""
        from cognitivetwin_core.phase2.runs import read_run_file

        record = read_run_file(model_dir)
        if record is None:
            return None
        data = record.get("data", {})
        cache_dir = (record.get("feature_cache") or {}).get("path")
        cache_root = Path(cache_dir).parent if cache_dir else None
        if data.get("kind") == "file" and Path(data.get("path", "")).is_file():
            from cognitivetwin_core.data.importers import read_conversations

            conversations, _ = read_conversations(data["path"])
        elif data.get("kind") == "workspace" and Path(data.get("path", "")).is_dir():
            from cognitivetwin_core.data.workspace import Workspace

            workspace = Workspace.open(data["path"])
            try:
                # A run on one source of the workspace names it (Phase2Config.source).
                filters = {"source": data["source"]} if data.get("source") else {}
                conversations = list(workspace.iter_conversations(**filters))
            finally:
                workspace.close()
        else:
            return None
        index = cls.build(model, conversations, cache_dir=cache_root, progress=progress)
        from cognitivetwin_core.phase2.person_style import load_person_style

        style = load_person_style(model_dir)
        if style is not None:
            index.mark_person(style.speaker)
        return index

    def mark_person(self, speaker: str) -> int:
        """Flag the person's own messages (`speaker`: a role or a participant); how many there are."""
        from cognitivetwin_core.data.twin_speaker import is_person

        self.person_speaker = speaker
        count = 0
        for entry in self.entries:
            entry.person = is_person(Message(entry.role, entry.text, speaker=entry.speaker), speaker)
            count += entry.person
        return count

    def row_of(self, conversation_id: str, message_index: int) -> int | None:
        """The row of a message in this index, or None."""
        rows = getattr(self, "_rows", None)
        if rows is None:
            rows = self._rows = {(e.conversation_id, e.message_index): i for i, e in enumerate(self.entries)}
        return rows.get((conversation_id, int(message_index)))

    def pooled(self, row: int):
        """The raw pooled base state of row `row` (numpy float32 [hidden]), as training cached it."""
        import numpy as np

        if self._pooled is None:
            raise InputError("This neighbour index holds no pooled states.")
        return np.asarray(self._pooled[row], dtype=np.float32)

    def pooled_for(self, conversation_id: str, message_index: int):
        """The pooled state of a message by (conversation id, message index); None if not indexed."""
        row = self.row_of(conversation_id, message_index)
        return None if row is None or self._pooled is None else self.pooled(row)

    def find(self, messages: Sequence[Message]) -> tuple[str, int] | None:
        """(conversation id, message index) of the last of `messages` if the index holds it
        after the same earlier messages (same roles and texts); else None."""
        messages = list(messages)
        if not messages:
            return None
        last, position = messages[-1], len(messages) - 1
        for row, entry in enumerate(self.entries):
            if entry.message_index != position or entry.text != last.content or entry.role != last.role:
                continue
            # A conversation's rows are contiguous and in order: the context is the rows above.
            earlier = self.entries[row - position : row]
            if all(
                e.conversation_id == entry.conversation_id and e.text == m.content and e.role == m.role
                for e, m in zip(earlier, messages[:-1])
            ):
                return entry.conversation_id, entry.message_index
        return None

    def nearest(
        self, plan_steps, top_k: int = 3, exclude: tuple[str, int] | None = None, turn_index: int | None = None
    ) -> list[list[Neighbour]]:
        """For each row of `plan_steps` ([K, hidden], standardised space), the top_k messages by
        cosine; `exclude` (conversation id, message index) names a message never returned (the
        one being analysed). Step k (row k-1) predicts the turn k turns after the analysed one
        (at `turn_index`), so it is compared with the messages at turn `turn_index + k` of their
        own conversations; where fewer than top_k are there, with every message at least k
        turns in (an opening message is never anyone's next turn), else with all."""
        import torch

        queries = torch.nn.functional.normalize(torch.as_tensor(plan_steps, dtype=torch.float32), dim=-1)
        scores = queries @ self.vectors.T
        excluded = self.row_of(*exclude) if exclude is not None else None
        if excluded is not None:
            scores[:, excluded] = float("-inf")
        turn = getattr(self, "_turn_index", None)
        if turn is None:
            turn = self._turn_index = torch.tensor([e.message_index for e in self.entries])
        for step in range(len(scores)):
            ahead = step + 1
            candidates = [turn >= ahead]
            if turn_index is not None:
                candidates.insert(0, turn == turn_index + ahead)
            for allowed in candidates:
                if excluded is not None:
                    allowed = allowed.clone()
                    allowed[excluded] = False
                if int(allowed.sum()) >= top_k:
                    scores[step, ~allowed] = float("-inf")
                    break
        k = min(top_k, len(self.entries) - (excluded is not None))
        values, indices = scores.topk(k, dim=-1)
        result = []
        for row_values, row_indices in zip(values.tolist(), indices.tolist()):
            result.append(
                [
                    Neighbour(e.conversation_id, e.message_index, e.role, e.text, float(score), e.speaker)
                    for score, e in ((s, self.entries[i]) for s, i in zip(row_values, row_indices))
                ]
            )
        return result

    def signatures(self, model):
        """Style signatures of every indexed message at its own trajectory: numpy [N, 256]."""
        import torch

        coords = torch.tensor([t["coordinates"] for t in self._trajectories], dtype=torch.float32)
        phases = torch.tensor([t["phase_id"] for t in self._trajectories], dtype=torch.long)
        homogeneity = torch.tensor([t["homogeneity"] for t in self._trajectories], dtype=torch.float32)
        with torch.inference_mode():
            out = model(hidden_states=self._pooled, trajectory_coords=coords, phase_id=phases, homogeneity=homogeneity)
        return out.style_signature.float().cpu().numpy()

    def signature_map(self, model, extra=None):
        """2-D PCA of the indexed signatures: (points [N, 2], project) where project(sig) maps any
        signature (e.g. the current message's, `extra`) into the same plane."""
        import numpy as np

        signatures = self.signatures(model)
        mean = signatures.mean(axis=0)
        _, _, components = np.linalg.svd(signatures - mean, full_matrices=False)
        axes = components[:2].T

        def project(signature):
            return (np.asarray(signature, dtype=np.float32) - mean) @ axes

        return project(signatures), project

    def entry(self, i: int) -> _Entry:
        return self.entries[i]
