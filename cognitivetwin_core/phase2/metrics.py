"""Phase 2 validation metrics, each reported beside the trivial baseline it must beat.

- Patterns: macro-F1 (threshold 0.5) and per-pattern ROC AUC, against the label-prior
  baseline: a predictor that says "yes" to each pattern with its training frequency
  (expected F1 = 2·prior·prevalence / (prior + prevalence), AUC 0.5). Patterns with no
  positive in the validation split are left out of the macro averages.
- Planning: mean cosine between each plan step and the message it predicts, against
  "predict the current message" (cosine of the current message to the same targets).
- Style: top-1 retrieval within a batch (is a message's nearest signature another message
  of the same conversation and role?) against chance (the share of such messages).

numpy only; the trainer hands arrays in.
"""

from __future__ import annotations

import numpy as np


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Mann-Whitney AUC with average ranks for ties; None when a class is absent."""
    labels = labels.astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    start = 0
    while start < len(scores):
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def f1_score(predicted: np.ndarray, labels: np.ndarray) -> float:
    predicted, labels = predicted.astype(bool), labels.astype(bool)
    true_positive = int((predicted & labels).sum())
    denominator = int(predicted.sum()) + int(labels.sum())
    return 2.0 * true_positive / denominator if denominator else 0.0


def pattern_metrics(probabilities: np.ndarray, labels: np.ndarray, train_prior: np.ndarray, names) -> dict:
    per_pattern = {}
    f1s, baseline_f1s, aucs = [], [], []
    for index, name in enumerate(names):
        column = labels[:, index]
        prevalence = float(column.mean()) if len(column) else 0.0
        if prevalence == 0.0:
            per_pattern[name] = {"support": 0}
            continue
        f1 = f1_score(probabilities[:, index] >= 0.5, column)
        prior = float(train_prior[index])
        baseline = 2 * prior * prevalence / (prior + prevalence) if prior + prevalence > 0 else 0.0
        auc = roc_auc(probabilities[:, index], column)
        per_pattern[name] = {"support": int(column.sum()), "f1": f1, "f1_baseline": baseline, "auc": auc}
        f1s.append(f1)
        baseline_f1s.append(baseline)
        if auc is not None:
            aucs.append(auc)
    return {
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "macro_f1_baseline": float(np.mean(baseline_f1s)) if baseline_f1s else 0.0,
        "macro_auc": float(np.mean(aucs)) if aucs else 0.5,
        "macro_auc_baseline": 0.5,
        "per_pattern": per_pattern,
    }


def retrieval_rows(signatures: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per message of one batch: (hit, anchor, chance). An anchor has another message of its
    group (same conversation and role); a hit's nearest signature is one of them; chance is the
    share of such messages among the others (0 for a non-anchor)."""
    count = len(group)
    if count < 2:
        return np.zeros(count, dtype=bool), np.zeros(count, dtype=bool), np.zeros(count)
    similarity = signatures @ signatures.T
    np.fill_diagonal(similarity, -np.inf)
    same = group[:, None] == group[None, :]
    np.fill_diagonal(same, False)
    anchor = same.any(axis=1)
    nearest = similarity.argmax(axis=1)
    hit = same[np.arange(count), nearest] & anchor
    chance = np.where(anchor, same.sum(axis=1) / (count - 1), 0.0)
    return hit, anchor, chance


def retrieval_hits(signatures: np.ndarray, group: np.ndarray) -> tuple[int, int, float]:
    """(hits, anchors, chance sum) for one batch; `group` ids equal for same conversation and role."""
    hit, anchor, chance = retrieval_rows(signatures, group)
    return int(hit.sum()), int(anchor.sum()), float(chance.sum())


def format_table(epoch_metrics: dict) -> str:
    """A small text table: metric, model, baseline."""
    rows = [
        ("pattern macro-F1", epoch_metrics.get("pattern_macro_f1"), epoch_metrics.get("pattern_macro_f1_baseline")),
        ("pattern macro-AUC", epoch_metrics.get("pattern_macro_auc"), epoch_metrics.get("pattern_macro_auc_baseline")),
        ("planning cosine", epoch_metrics.get("planning_cosine"), epoch_metrics.get("planning_cosine_baseline")),
        ("style retrieval@1", epoch_metrics.get("style_retrieval"), epoch_metrics.get("style_retrieval_chance")),
    ]
    lines = [f"{'metric':<20} {'model':>8} {'baseline':>9}"]
    for name, model, baseline in rows:
        if model is None:
            continue
        lines.append(f"{name:<20} {model:>8.4f} {baseline if baseline is not None else float('nan'):>9.4f}")
    return "\n".join(lines)
