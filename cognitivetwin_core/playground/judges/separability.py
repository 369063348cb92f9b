"""Can they be told apart? A cross-validated classifier between the person's real replies and
another writer's replies to the same contexts (the twin's, the base's), reported as ROC-AUC
with a bootstrap interval over conversations (docs/judging.md).

    told_apart(real, twin, groups, features)   # {"auc", "low", "high", "meaning"}

0.5 means the classifier cannot tell them apart (the best a twin can do); 1.0 means it
always can. Each pair (real reply, answer) stays in one fold, so the classifier never sees
the real reply of a context it is asked about. Features are given per reply: the stylometric
features (annotation/stylometrics.py) or the frozen base's mean hidden state.
"""

from __future__ import annotations

import random

from cognitivetwin_core.playground.judges.intervals import interval

MIN_PAIRS = 4
DEFAULT_FOLDS = 5
MEANING = "0.5 = a classifier cannot tell them from your real replies, 1.0 = it always can"


def stylometric_matrix(texts: list[str]) -> list[list[float]]:
    from cognitivetwin_core.annotation.stylometrics import stylometric_features

    return [stylometric_features(text or "") for text in texts]


def told_apart(
    real: list[list[float]],
    other: list[list[float]],
    groups: list[str],
    *,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> dict | None:
    """ROC-AUC of telling `other` from `real` (paired by index, one conversation per pair in
    `groups`), cross-validated, with its interval; None with fewer than MIN_PAIRS pairs."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pairs = len(real)
    if pairs < MIN_PAIRS or len(other) != pairs:
        return None
    distinct = sorted(set(groups))
    k = min(folds, len(distinct)) if len(distinct) >= 2 else min(folds, pairs)
    order = distinct[:] if len(distinct) >= 2 else list(range(pairs))
    random.Random(seed).shuffle(order)
    fold_of_key = {key: n % k for n, key in enumerate(order)}
    fold = [fold_of_key[groups[i]] if len(distinct) >= 2 else fold_of_key[i] for i in range(pairs)]
    x = np.asarray(real + other, dtype=float)
    y = np.asarray([0] * pairs + [1] * pairs)
    fold_all = np.asarray(fold + fold)
    scores = np.zeros(2 * pairs)
    for f in range(k):
        test = fold_all == f
        train = ~test
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
        model.fit(x[train], y[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
    # Per conversation: its pairs' (real score, other score); the AUC over a resample of them.
    by_group: dict[str, list[tuple[float, float]]] = {}
    for i in range(pairs):
        by_group.setdefault(groups[i], []).append((float(scores[i]), float(scores[pairs + i])))
    result = interval(list(by_group.values()), _auc, seed=seed)
    if result is None:
        return None
    return {"auc": result["share"], "low": result["low"], "high": result["high"], "pairs": pairs, "meaning": MEANING}


def _auc(groups: list[list[tuple[float, float]]]) -> float | None:
    """The probability that an answer scores above a real reply (ties count half): the ROC-AUC."""
    real = [pair[0] for group in groups for pair in group]
    other = [pair[1] for group in groups for pair in group]
    if not real or not other:
        return None
    wins = sum((o > r) + 0.5 * (o == r) for o in other for r in real)
    return wins / (len(real) * len(other))
