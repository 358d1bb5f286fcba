"""Per-base metrics as AtacWorks reports them, plus the seed's window MSE.

Every function takes numpy arrays (flattened here; MSE and Pearson sum in
float64 chunks rather than copying a genome-sized vector) and returns a float,
or ``None`` when the metric is undefined (a constant track has no Pearson correlation; AUPRC needs
both classes). Callers print ``undefined`` instead of crashing, because real
validation sets can lack peaks (AtacWorks crashes there).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

_CHUNK = 1 << 20  # values per chunk of the correlation sums: bounded temporaries, deterministic order


def mse(pred: np.ndarray, truth: np.ndarray) -> float | None:
    pred, truth = np.ravel(pred), np.ravel(truth)
    if pred.size == 0:
        return None
    total = 0.0
    for start in range(0, pred.size, _CHUNK):  # chunks: no full-size float64 difference
        diff = pred[start:start + _CHUNK].astype(np.float64) - truth[start:start + _CHUNK]
        total += float(np.sum(diff * diff))
    return total / pred.size


def pearson(pred: np.ndarray, truth: np.ndarray) -> float | None:
    """Pearson correlation, equal to ``scipy.stats.pearsonr`` to 1e-9 (tests/test_metrics.py).

    Hand-written for two reasons (benchmarks/bench_metrics.py): SciPy's dot
    products go through BLAS, whose result depends on its thread count, and a
    resumed search must reproduce its history exactly in another process; and
    SciPy makes about six full-size float64 temporaries (2 GB each at 250M
    bases), while this works in chunks and makes none.
    """
    pred, truth = np.ravel(pred), np.ravel(truth)
    if pred.size < 2:
        return None
    x_mean, y_mean = pred.mean(dtype=np.float64), truth.mean(dtype=np.float64)
    sums = np.zeros(3)  # xx, yy, xy of the centred values, chunk by chunk in a fixed order
    for start in range(0, pred.size, _CHUNK):
        x = pred[start:start + _CHUNK].astype(np.float64) - x_mean
        y = truth[start:start + _CHUNK].astype(np.float64) - y_mean
        sums += (np.sum(x * x), np.sum(y * y), np.sum(x * y))
    denom = np.sqrt(sums[0] * sums[1])
    return None if denom == 0 or not np.isfinite(denom) else float(sums[2] / denom)


def spearman(pred: np.ndarray, truth: np.ndarray) -> float | None:
    """Pearson of SciPy's average ranks: ``scipy.stats.spearmanr``'s definition, with :func:`pearson`'s
    determinism and a third less memory (it stacks both vectors and calls BLAS through ``np.corrcoef``)."""
    pred, truth = np.ravel(pred), np.ravel(truth)
    if pred.size < 2:
        return None
    return pearson(rankdata(pred), rankdata(truth))


# AUPRC and AUROC are hand-written because they are about twice as fast as scikit-learn's
# average_precision_score and roc_auc_score on 10-30M bases (2.2-2.4x and 2.1-2.4x), with 20-35 % less
# memory (benchmarks/bench_metrics.py); tests/test_metrics.py checks they equal scikit-learn's to 1e-6.

def _ranked_labels(scores: np.ndarray, labels: np.ndarray):
    """Labels sorted by descending score, with the indices where the score changes (ties share a threshold).

    The order inside a tie does not matter (only each tie's last index is used), so an
    ascending sort read backwards serves, in the scores' own dtype: no negated copy.
    """
    order = np.argsort(scores, kind="stable")[::-1]
    s, y = scores[order], labels[order]
    del order
    last_of_tie = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    return y, last_of_tie


def auprc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Average precision: the step-wise area under the precision-recall curve, as scikit-learn's
    ``average_precision_score`` (not the trapezoidal ``auc(recall, precision)``, which is optimistic)."""
    scores, labels = np.ravel(scores), np.ravel(labels) > 0
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.size:
        return None
    y, cut = _ranked_labels(scores, labels)
    tp = np.cumsum(y, dtype=np.int64)[cut]
    precision = tp / (cut + 1)
    recall_gain = np.diff(tp, prepend=0) / n_pos
    return float(np.sum(precision * recall_gain))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties counted half), as scikit-learn's ``roc_auc_score``."""
    scores, labels = np.ravel(scores), np.ravel(labels) > 0
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
