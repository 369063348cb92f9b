"""Plain-word verdicts on a training curve, shared by Phase 1 and Phase 2 (which may not
import each other): is the loss falling, flat or rising, and is the model overfitting.

    loss_trend([2.1, 1.9, 1.7, 1.6])          -> LossTrend("falling", "The loss fell from 2.10 to 1.60: ...")
    overfitting(train_losses, val_losses)     -> Overfitting(since_epoch=4, message=...) or None

Pure functions on lists of floats; no torch, no Qt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# A change of the loss smaller than this fraction of its start counts as flat: noise in a few
# hundred steps moves it about that much.
_FLAT_FRACTION = 0.03

# Phase 1 reports a loss per step: fewer than this many steps' losses are noise, not a trend.
MIN_STEPS_FOR_A_TREND = 8


@dataclass(frozen=True)
class LossTrend:
    kind: str  # "falling" | "flat" | "rising" | "unknown"
    start: float | None
    end: float | None
    message: str


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def loss_trend(losses: Sequence[float | None], *, min_points: int = 2) -> LossTrend:
    """Compare the mean of the first and the last quarter of the curve (at least one point each);
    with fewer than `min_points` values, say that it is too early to tell."""
    values = _finite(losses)
    if len(values) < max(2, min_points):
        return LossTrend(
            "unknown",
            values[0] if values else None,
            values[-1] if values else None,
            f"The loss was measured {len(values)} time(s): too few to tell whether the model is learning; "
            "train for more steps.",
        )
    window = max(1, len(values) // 4)
    start = sum(values[:window]) / window
    end = sum(values[-window:]) / window
    change = end - start
    scale = max(abs(start), 1e-9)
    if change > _FLAT_FRACTION * scale:
        return LossTrend(
            "rising",
            start,
            end,
            f"The loss rose (from {start:.2f} to {end:.2f}): the model is not learning from this data; "
            "try a lower learning rate.",
        )
    if change < -_FLAT_FRACTION * scale:
        return LossTrend(
            "falling", start, end, f"The loss fell (from {start:.2f} to {end:.2f}): the model is learning."
        )
    return LossTrend(
        "flat",
        start,
        end,
        f"The loss stayed about the same ({start:.2f} to {end:.2f}): the model learned little; "
        "train longer or try a higher learning rate.",
    )


@dataclass(frozen=True)
class Overfitting:
    since_epoch: int  # the first epoch of the rise (1-based, as the epochs are numbered)
    best_epoch: int
    message: str


def overfitting(
    train_losses: Sequence[float | None], validation_losses: Sequence[float | None], *, window: int = 3
) -> Overfitting | None:
    """Overfitting: for `window` epochs after the best validation epoch, validation loss rose
    above that best while training loss kept falling. Epochs are numbered from 1."""
    count = min(len(train_losses), len(validation_losses))
    pairs = [(train_losses[i], validation_losses[i]) for i in range(count)]
    if count < window + 1 or any(t is None or v is None for t, v in pairs):
        return None
    val = [float(v) for _, v in pairs]
    train = [float(t) for t, _ in pairs]
    best = min(range(count), key=val.__getitem__)
    after = range(best + 1, count)
    if len(after) < window:
        return None
    if not all(val[i] > val[best] for i in after):
        return None
    if train[-1] >= train[best]:
        return None
    return Overfitting(
        since_epoch=best + 2,
        best_epoch=best + 1,
        message=(
            f"Overfitting: after epoch {best + 1} the validation loss rose ({val[best]:.2f} to {val[-1]:.2f}) "
            f"while the training loss kept falling ({train[best]:.2f} to {train[-1]:.2f}): the model began "
            f"memorising the training conversations. The model of epoch {best + 1} is kept."
        ),
    )
