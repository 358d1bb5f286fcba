"""Validation metrics of the search: Pearson over all target bins and average precision of peaks."""

from __future__ import annotations

import numpy as np


def pearson(prediction: np.ndarray, truth: np.ndarray) -> float | None:
    """Pearson correlation of the flattened arrays; None when either is constant."""
    x = np.asarray(prediction, np.float64).ravel()
    y = np.asarray(truth, np.float64).ravel()
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return None if denominator == 0 or not np.isfinite(denominator) else float((x * y).sum() / denominator)


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the precision-recall curve as a step function (sklearn's definition).

    ``AP = sum_k (R_k - R_{k-1}) * P_k`` over the distinct score thresholds, from
    the highest down; tied scores enter together. None when there is no positive.
    """
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels).ravel() > 0
    n_positive = int(labels.sum())
    if n_positive == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    # The last index of each run of equal scores is where a threshold admits them all.
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(labels)[last_of_tie]
    precision = true_positives / (last_of_tie + 1)
    recall_gain = np.diff(np.r_[0, true_positives]) / n_positive
    return float((recall_gain * precision).sum())
