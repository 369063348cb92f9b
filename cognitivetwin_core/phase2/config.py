"""The settings of a Phase 2 run (no torch: the app and the CLI build them cheaply).

A `Phase2Config` is checked when it is made (`InputError` naming every unusable setting) and
never changed after: derive another with `dataclasses.replace` (checked again). Settings left
to the device (None) get their values in one place, `resolve_for_device`, which the trainer
calls once it knows where it runs; the CLI and the app both leave them to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL

DEFAULT_LOSS_WEIGHTS = {"style": 1.0, "stylometric": 0.5, "pattern": 1.0, "planning": 1.0}


@dataclass(frozen=True)
class Phase2Config:
    base_model: str = DEFAULT_BASE_MODEL
    adapter_dir: str | None = None
    output_dir: str | None = None  # default with a workspace: <workspace>/runs/<run id>
    epochs: int = 10
    # Conversations per batch (all their messages go in: style positives) and batches per update.
    # None: 4 and 4 on the CPU; 16 and 1 on CUDA (the same conversations per update, a quarter
    # of the steps), see resolve_for_device.
    batch_size: int | None = None
    lr: float = 1e-3  # the seed's 1e-4 is too small for the few updates small data gives (see the CLI help)
    gradient_accumulation: int | None = None
    device: str = "auto"
    plan_steps: int = 4
    seed: int = 42
    loss_weights: dict = field(default_factory=lambda: dict(DEFAULT_LOSS_WEIGHTS))
    val_fraction: float = 0.2
    num_threads: int | None = None
    leave_one_core_free: bool = False
    resume: bool = False
    overwrite: bool = False  # replace an earlier run in output_dir (never other files)
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    max_grad_norm: float = 1.0
    temperature: float = 0.1  # InfoNCE
    cache_dir: str | None = None  # default: <workspace>/cache/phase2-features or the user cache
    max_window_tokens: int | None = None  # None: 4096 on CUDA, 1024 elsewhere (docs/gpu.md)
    overlap_tokens: int = 256
    encode_batch_tokens: int | None = None  # None: sized from free device memory
    # Stop when validation loss has not improved for this many epochs (0: never stop early).
    patience: int = 5
    name: str | None = None  # the run's readable name (default: base, data, date)
    # With a workspace: train on the conversations of this one source (None: all of them).
    source: str | None = None
    # Steps between host syncs for logging (loss read-out, NaN check, StepEvent). None: every
    # step on the CPU, every 25 on CUDA (a read-out waits for the GPU to drain).
    log_every_steps: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def resolve_for_device(self, device: str) -> Phase2Config:
        """This config with the settings left to the device (None) filled with its defaults."""
        cuda = device.startswith("cuda")
        return replace(
            self,
            batch_size=self.batch_size or (16 if cuda else 4),
            gradient_accumulation=self.gradient_accumulation or (1 if cuda else 4),
            log_every_steps=self.log_every_steps or (25 if cuda else 1),
        )

    def validate(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append("epochs must be at least 1")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append("batch size must be at least 1")
        if self.gradient_accumulation is not None and self.gradient_accumulation < 1:
            problems.append("gradient accumulation must be at least 1")
        if self.log_every_steps is not None and self.log_every_steps < 1:
            problems.append("the logging interval must be at least 1 step")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append("the learning rate must be a positive number")
        if self.patience < 0:
            problems.append("patience must be 0 (off) or more epochs")
        if self.plan_steps < 1:
            problems.append("plan steps must be at least 1")
        if self.encode_batch_tokens is not None and self.encode_batch_tokens < 1:
            problems.append("encode batch tokens must be at least 1")
        if self.max_window_tokens is not None and self.max_window_tokens < 16:
            problems.append("the encoding window must be at least 16 tokens")
        if not 0.0 <= self.val_fraction < 1.0:
            problems.append("the validation fraction must be in [0, 1)")
        unknown = set(self.loss_weights) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            problems.append(f"unknown loss weights {sorted(unknown)} (known: {', '.join(DEFAULT_LOSS_WEIGHTS)})")
        if problems:
            raise InputError("Phase 2 settings: " + "; ".join(problems) + ".")

    def weight(self, name: str) -> float:
        return float(self.loss_weights.get(name, DEFAULT_LOSS_WEIGHTS[name]))


# ----- events ---------------------------------------------------------------------------------
