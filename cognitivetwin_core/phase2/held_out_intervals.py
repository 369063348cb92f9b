"""How sure a Phase 2 gain is: a bootstrap over the validation conversations.

A head "beats its baseline" only when the 95% interval of (model − baseline) lies wholly
above zero (docs/phase2-training.md). Messages of one conversation are not independent, so
the resampled unit is the conversation: each resample draws the validation conversations
with replacement and recomputes both metrics from their summed per-conversation counts.
Seeded, so the same run gives the same intervals. numpy only.

    weights = resample_weights(conversations=40, seed=42)          # [resamples, 40]
    ratio_gain(weights, model_sums, baseline_sums, counts)         # [low, high] or None
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95


def resample_weights(conversations: int, seed: int, resamples: int = RESAMPLES) -> np.ndarray:
    """How often each conversation is drawn in each resample: [resamples, conversations]."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, conversations, size=(resamples, conversations))
    weights = np.zeros((resamples, conversations), dtype=np.float64)
    np.add.at(weights, (np.arange(resamples)[:, None], draws), 1.0)
    return weights


def interval(samples: np.ndarray) -> list[float] | None:
    """The central 95% of the resampled gains ([low, high]); None when none is defined."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return None
    tail = (1.0 - LEVEL) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return [float(low), float(high)]


def ratio_gain(weights: np.ndarray, model: np.ndarray, baseline: np.ndarray, counts: np.ndarray):
    """The interval of (Σ model − Σ baseline) / Σ counts over resampled conversations: the gain
    of a mean over messages (planning cosine, style retrieval). Arrays are per conversation
    ([C]) or per conversation and column ([C, K]: one interval per column, as a list)."""
    model_sum, baseline_sum, count = (weights @ np.asarray(a, dtype=np.float64) for a in (model, baseline, counts))
    with np.errstate(invalid="ignore", divide="ignore"):
        gains = np.where(count > 0, (model_sum - baseline_sum) / np.where(count > 0, count, 1), np.nan)
    if gains.ndim == 1:
        return interval(gains)
    return [interval(gains[:, k]) for k in range(gains.shape[1])]


def _macro_f1(weights: np.ndarray, counts: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Per resample and pattern: the F1 at threshold 0.5 from summed (true positives, predicted,
    labelled positives) and whether the pattern has a positive at all ([B, P] each)."""
    tp, pred, pos = (weights @ np.asarray(a, dtype=np.float64) for a in counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(pred + pos > 0, 2 * tp / np.where(pred + pos > 0, pred + pos, 1), 0.0)
    return f1, pos


def _macro_mean(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    counted = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counted > 0, (values * present).sum(axis=1) / np.where(counted > 0, counted, 1), np.nan)


def pattern_f1_gain(weights: np.ndarray, counts: tuple, messages: np.ndarray, train_prior: np.ndarray):
    """The interval of macro-F1 minus its label-prior baseline (phase2/metrics.py). `counts`:
    per conversation and pattern the (true positives, predicted, labelled positives), [C, P]
    each; `messages` per conversation. Patterns without a positive in a resample are left out
    of its mean, as the point metric leaves out those absent from the validation split."""
    f1, positives = _macro_f1(weights, counts)
    total = (weights @ np.asarray(messages, dtype=np.float64))[:, None]
    prior = np.asarray(train_prior, dtype=np.float64)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        prevalence = positives / np.where(total > 0, total, 1)
        baseline = np.where(prior + prevalence > 0, 2 * prior * prevalence / (prior + prevalence), 0.0)
    return interval(_macro_mean(f1 - baseline, positives > 0))


def pattern_f1_difference(weights: np.ndarray, first: tuple, second: tuple):
    """The interval of macro-F1 from `first` counts minus macro-F1 from `second` (the same
    messages, other inputs: the trajectory ablation)."""
    f1_first, positives = _macro_f1(weights, first)
    f1_second, _ = _macro_f1(weights, second)
    return interval(_macro_mean(f1_first - f1_second, positives > 0))
