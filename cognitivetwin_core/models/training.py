"""What the two trainers (Phase 1 local LoRA, Phase 2 heads) share: the learning-rate
schedule, the resume fingerprint and state dicts moved to the CPU for their checkpoints.

It lives in `models/` because `phase1/` and `phase2/` may not import each other. No torch at
import time and no Qt here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from cognitivetwin_core.errors import InputError

LR_FLOOR = 0.1  # both trainers decay to 10% of the peak, never to zero


def warmup_steps(total_steps: int, fraction: float = 0.05) -> int:
    """Warm-up length: `fraction` of the run, at least one step."""
    return max(1, int(fraction * total_steps))


def lr_factor(step: int, total_steps: int, warmup: int, *, decay: str = "cosine", floor: float = LR_FLOOR) -> float:
    """The multiplier of the peak learning rate at optimizer step `step` (0-based).

    Linear warm-up over `warmup` steps, then a decay to `floor` at `total_steps`: "cosine"
    (Phase 2) or "linear" (local LoRA, whose short runs want the steady slope).
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if decay == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if decay == "linear":
        return 1 - (1 - floor) * progress
    raise ValueError(f"unknown decay {decay!r}")


def fingerprint_changes(
    saved: Mapping, wanted: Mapping, *, ignore: Iterable[str] = (), keys: Iterable[str] | None = None
) -> list[str]:
    """The keys whose values differ between a checkpoint's fingerprint and this run's, sorted.

    All keys of either side by default; only `keys` when given (a check that tolerates
    extra entries an older or newer writer recorded).
    """
    compared = set(keys) if keys is not None else set(saved) | set(wanted)
    compared -= set(ignore)
    return sorted(k for k in compared if saved.get(k) != wanted.get(k))


def resume_mismatch_error(checkpoint: str | Path, changed: Iterable[str]) -> InputError:
    """The one sentence both trainers give when a checkpoint was made with other data or settings."""
    return InputError(
        f"The checkpoint in {checkpoint} was made with other data or settings ({', '.join(changed)}); "
        "resume with the same ones, or start a new output folder."
    )


def state_on_cpu(value, *, copy: bool = False):
    """A state dict (nested dicts, lists and tuples) with every tensor on the CPU, readable on
    any machine. With `copy`, tensors and containers are new even where they were on the CPU
    already, so training may go on changing the originals while the copy is written."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=copy)
    if isinstance(value, dict):
        return {k: state_on_cpu(v, copy=copy) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(state_on_cpu(v, copy=copy) for v in value)
    return value
