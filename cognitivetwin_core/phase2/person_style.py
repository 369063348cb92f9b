"""The person's style centroid: the mean style signature of their own messages.

Phase 2 saves it with each run (`person_style.json` in the run folder) so that anything
later (the playground's style map, the chat's "sounds like you" score, Phase 1
evaluation) can ask how close a text's style signature is to the person's.
Plain JSON, no pickle: 256 floats and who the person is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from cognitivetwin_core.atomic_files import write_json_atomically

PERSON_STYLE_FILE = "person_style.json"


@dataclass(frozen=True)
class PersonStyle:
    speaker: str  # "assistant", "user" or a participant's name: whose messages the centroid averages
    centroid: tuple[float, ...]  # unit length, the style head's dimension
    messages: int  # how many of the person's messages it averages

    def to_dict(self) -> dict:
        return {**asdict(self), "centroid": list(self.centroid)}

    @classmethod
    def from_dict(cls, data: dict) -> PersonStyle:
        return cls(
            speaker=str(data["speaker"]),
            centroid=tuple(float(x) for x in data["centroid"]),
            messages=int(data["messages"]),
        )


def centroid_of(signatures: Iterable[Sequence[float]]) -> tuple[tuple[float, ...], int]:
    """The unit-length mean of `signatures` and how many there were."""
    total: list[float] | None = None
    count = 0
    for signature in signatures:
        if total is None:
            total = [0.0] * len(signature)
        for i, value in enumerate(signature):
            total[i] += float(value)
        count += 1
    if total is None:
        raise ValueError("no signatures to average: the person has no messages in this data")
    norm = math.sqrt(sum(x * x for x in total)) or 1.0
    return tuple(x / norm for x in total), count


def sounds_like(signature: Sequence[float], centroid: Sequence[float]) -> float:
    """Cosine of a style signature to the person's centroid: 1 is the person's own style."""
    dot = sum(float(a) * float(b) for a, b in zip(signature, centroid))
    norm = math.sqrt(sum(float(a) ** 2 for a in signature)) * math.sqrt(sum(float(b) ** 2 for b in centroid))
    return dot / norm if norm else 0.0


def save_person_style(run_dir: str | Path, style: PersonStyle) -> Path:
    path = Path(run_dir) / PERSON_STYLE_FILE
    write_json_atomically(path, style.to_dict())
    return path


def load_person_style(run_dir: str | Path) -> PersonStyle | None:
    """The run's person style, or None for a run made before runs kept one."""
    path = Path(run_dir) / PERSON_STYLE_FILE
    if not path.is_file():
        return None
    return PersonStyle.from_dict(json.loads(path.read_text(encoding="utf-8")))
