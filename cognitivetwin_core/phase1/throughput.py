"""Measured local LoRA speed: the tokens per second of finished local runs, kept in the
workspace's Phase 1 job records (`tokens_per_second`, `device`, `base_model`), is what the
next run's time estimate starts from, before any guess from the model's size.
"""

from __future__ import annotations

import statistics

from cognitivetwin_core.phase1.jobs import read_jobs


def _device_kind(device: str | None) -> str:
    """'cuda:1' and 'cuda' are the same kind of device for an estimate."""
    return (device or "cpu").split(":", 1)[0]


def measured_tokens_per_second(workspace, base_model: str, device: str | None = None) -> float | None:
    """The median speed of the last three completed local runs of `base_model` (on a
    device of `device`'s kind when given), or None when nothing was measured yet."""
    rates = []
    for record in read_jobs(workspace, "local"):
        if record.status != "completed" or str(record.base_model or "") != str(base_model):
            continue
        if device is not None and _device_kind(record.device) != _device_kind(device):
            continue
        rate = record.tokens_per_second
        if isinstance(rate, int | float) and rate > 0:
            rates.append((str(record.updated or ""), float(rate)))
    if not rates:
        return None
    rates.sort()
    return statistics.median(rate for _, rate in rates[-3:])


def estimate_seconds(tokens: int, tokens_per_second: float) -> float:
    return tokens / max(tokens_per_second, 1e-9)
