"""What an adapter-training run reports as it goes: `TrainingEvent`s, and the clock that
gives each step's time left.

Local LoRA (phase1/local_lora.py) sends one after every step and at start, checkpoint,
epoch end and done; its jobs backend (phase1/local_jobs.py) stores them on the job record,
and a run in a child process (phase1/local_lora_process.py) sends them to the window. Any
other adapter training (preference tuning) reports through the same type.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# The kinds of event: "start", "step", "memory" (out of memory: retrying smaller), "epoch",
# "checkpoint", "done".
EVENT_KINDS = ("start", "step", "memory", "epoch", "checkpoint", "done")


@dataclass
class TrainingEvent:
    kind: str  # one of EVENT_KINDS
    step: int  # optimizer steps done, including those before a resume
    total_steps: int
    epoch: int = 0
    loss: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None
    message: str = ""


class StepClock:
    """Time left from the steps done since this run (or this resume) began."""

    def __init__(self, first_step: int, total_steps: int):
        self.first_step = first_step
        self.total_steps = total_steps
        self.started = time.monotonic()

    def eta_seconds(self, step: int) -> float | None:
        elapsed = time.monotonic() - self.started
        rate = (step - self.first_step) / elapsed if elapsed > 0 else None
        return (self.total_steps - step) / rate if rate else None
