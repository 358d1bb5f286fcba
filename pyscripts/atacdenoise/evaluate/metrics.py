"""Per-base metrics as AtacWorks reports them, plus the seed's window MSE.

Every function takes numpy arrays (flattened here) and returns a float, or ``None`` when the
metric is undefined (a constant track has no Pearson correlation; AUPRC needs
both classes). Callers print ``undefined`` instead of crashing, because real
validation sets can lack peaks (AtacWorks crashes there).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def _flat(values, dtype=np.float64) -> np.ndarray:
    return np.asarray(values, dtype).ravel()


def mse(pred: np.ndarray, truth: np.ndarray) -> float | None:
    pred, truth = _flat(pred), _flat(truth)
    if pred.size == 0:
        return None
    diff = pred.astype(np.float64) - truth.astype(np.float64)
    return float(np.mean(diff * diff))


def pearson(pred: np.ndarray, truth: np.ndarray) -> float | None:
    pred, truth = _flat(pred), _flat(truth)
    if pred.size < 2:
        return None
    x = pred.astype(np.float64) - pred.mean(dtype=np.float64)
    y = truth.astype(np.float64) - truth.mean(dtype=np.float64)
    # Plain sums, not np.dot: BLAS results depend on its thread count, and a resumed
    # search must reproduce its history exactly in another process.
    denom = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return None if denom == 0 or not np.isfinite(denom) else float(np.sum(x * y) / denom)


def spearman(pred: np.ndarray, truth: np.ndarray) -> float | None:
    if pred.size < 2:
        return None
    return pearson(rankdata(pred), rankdata(truth))


def _ranked_labels(scores: np.ndarray, labels: np.ndarray):
    """Labels sorted by descending score, with the indices where the score changes (ties share a threshold)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(np.float64)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    return y, last_of_tie


def auprc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Average precision (the step-wise area under the precision-recall curve, as scikit-learn)."""
    scores, labels = _flat(scores), _flat(labels) > 0
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.size:
        return None
    y, cut = _ranked_labels(scores, labels)
    tp = np.cumsum(y)[cut]
    precision = tp / (cut + 1)
    recall_gain = np.diff(np.r_[0.0, tp]) / n_pos
    return float(np.sum(precision * recall_gain))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    scores, labels = _flat(scores), _flat(labels) > 0
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def base_f1(called: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Precision, recall and F1 of called peak bases against truth peak bases."""
    called, truth = called.astype(bool), truth.astype(bool)
    tp = int(np.sum(called & truth))
    n_called, n_true = int(called.sum()), int(truth.sum())
    precision = tp / n_called if n_called else None
    recall = tp / n_true if n_true else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def window_mse(pred_targets: np.ndarray, true_targets: np.ndarray) -> float | None:
    """The seed's metric: MSE over the centre bins of each window, averaged over windows."""
    return mse(np.asarray(pred_targets).ravel(), np.asarray(true_targets).ravel())


def format_metric(value: float | None, digits: int = 3) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"
