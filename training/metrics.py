"""Validation metrics of a direction classifier, next to the baselines it has to beat.

Plain numpy (no scikit-learn in the product). The baselines are reported whether or not the model
beats them: a direction model that loses to "always up" must say so.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1]); p = np.array([0.1, 0.6, 0.4, 0.9])
>>> accuracy(y, p), roc_auc(y, p)
(0.5, 0.75)
>>> round(log_loss(y, p), 4)
0.5108
"""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "direction_metrics", "log_loss", "roc_auc"]


def accuracy(y: np.ndarray, prob_up: np.ndarray, threshold: float = 0.5) -> float:
    """Share of rows where ``prob_up >= threshold`` agrees with ``y`` (same tie rule as core.signals.decide)."""
    return float(np.mean((np.asarray(prob_up) >= threshold) == (np.asarray(y) == 1)))


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN if one class is absent.

    >>> roc_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5]))
    0.5
    """
    y = np.asarray(y) == 1
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    # Average rank over each run of equal scores, so ties count half.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(score)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y: np.ndarray, prob_up: np.ndarray, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy, probabilities clipped to [eps, 1 - eps]."""
    p = np.clip(np.asarray(prob_up, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(y) == 1
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def direction_metrics(y: np.ndarray, prob_up: np.ndarray, last_return: np.ndarray) -> dict[str, float]:
    """Model metrics and baselines on the same rows.

    Baselines: ``always_up`` predicts up on every row; ``last_return_sign`` predicts the direction of the
    candle's own return (a flat last candle, or none, counts as up, as in always-up).

    >>> m = direction_metrics(np.array([1, 0, 1]), np.array([0.7, 0.2, 0.4]), np.array([0.01, -0.02, 0.0]))
    >>> m["accuracy"], m["baseline_always_up_accuracy"], m["baseline_last_return_sign_accuracy"]
    (0.6667, 0.6667, 1.0)
    """
    y = np.asarray(y)
    last_up = ~(np.nan_to_num(np.asarray(last_return), nan=0.0) < 0)
    metrics = {
        "accuracy": accuracy(y, prob_up),
        "auc": roc_auc(y, prob_up),
        "log_loss": log_loss(y, prob_up),
        "positive_rate": float(np.mean(y == 1)),
        "predicted_up_rate": float(np.mean(np.asarray(prob_up) >= 0.5)),
        "baseline_always_up_accuracy": float(np.mean(y == 1)),
        "baseline_last_return_sign_accuracy": float(np.mean(last_up == (y == 1))),
        "baseline_constant_log_loss": log_loss(y, np.full(len(y), np.mean(y == 1))),
    }
    # Rounded for a readable model.json; 4 decimals is finer than any difference that matters here.
    return {k: round(v, 4) for k, v in metrics.items()}
