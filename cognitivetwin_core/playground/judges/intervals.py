"""Bootstrap intervals over conversations: the unit that is resampled is a conversation,
because replies within one conversation are not independent (docs/judging.md)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

G = TypeVar("G")
DEFAULT_RESAMPLES = 1000
LEVEL = 0.95


def interval(
    groups: Sequence[G],
    statistic: Callable[[list[G]], float | None],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict | None:
    """{"share"/value, "low", "high"}: the statistic on all groups and its 95% percentile
    bootstrap interval (groups drawn with replacement, seeded). None without a value."""
    value = statistic(list(groups))
    if value is None:
        return None
    rng = random.Random(seed)
    draws = []
    for _ in range(resamples if len(groups) > 1 else 0):
        sample = [groups[rng.randrange(len(groups))] for _ in groups]
        drawn = statistic(sample)
        if drawn is not None:
            draws.append(drawn)
    if not draws:
        return {"share": value, "low": value, "high": value, "groups": len(groups)}
    draws.sort()
    tail = (1 - LEVEL) / 2
    low = draws[int(tail * (len(draws) - 1))]
    high = draws[int(round((1 - tail) * (len(draws) - 1)))]
    return {"share": value, "low": low, "high": high, "groups": len(groups)}


def pooled_share(groups: list[list[bool]]) -> float | None:
    """The share of True over every item of the groups (None when there is none)."""
    items = [x for group in groups for x in group]
    return sum(items) / len(items) if items else None


def share_interval(groups: Sequence[list[bool]], *, seed: int = 0) -> dict | None:
    return interval([g for g in groups if g], pooled_share, seed=seed)


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson 95% interval of a proportion (for the blind test, whose answers are the units)."""
    if total <= 0:
        return 0.0, 1.0
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * ((p * (1 - p) / total + z * z / (4 * total * total)) ** 0.5) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def excludes_zero(difference: dict | None) -> int:
    """+1 when the interval lies wholly above zero, -1 wholly below, 0 when it includes zero."""
    if not difference:
        return 0
    if difference["low"] > 0:
        return 1
    if difference["high"] < 0:
        return -1
    return 0
