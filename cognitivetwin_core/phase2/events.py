"""What a Phase 2 run reports as it goes: one dataclass per kind of event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class EncodingEvent:
    kind: ClassVar[str] = "encoding"
    phase: ClassVar[str] = "encoding"
    done: int
    total: int
    tokens: int
    tokens_per_s: float
    eta_s: float | None
    cache_hit: bool


@dataclass
class StepEvent:
    kind: ClassVar[str] = "step"
    phase: ClassVar[str] = "training"
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    global_step: int
    total_steps: int
    losses: dict
    lr: float
    examples_per_s: float
    eta_s: float | None
    # CUDA memory held by the run's process (allocated, peak allocated), bytes; None off CUDA.
    # The app's window has no torch of its own: it shows the figure the trainer reports.
    device_memory: tuple[int, int] | None = None


@dataclass
class EpochEvent:
    kind: ClassVar[str] = "epoch"
    phase: ClassVar[str] = "training"
    epoch: int
    epochs: int
    train_losses: dict
    val_losses: dict
    metrics: dict
    per_pattern: dict
    table: str


@dataclass
class CheckpointEvent:
    kind: ClassVar[str] = "checkpoint"
    phase: ClassVar[str] = "training"
    epoch: int
    path: str


@dataclass
class FinishedEvent:
    kind: ClassVar[str] = "finished"
    phase: ClassVar[str] = "training"
    outcome: str
    output_dir: str | None
    message: str
    metrics: dict | None = None
