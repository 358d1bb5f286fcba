"""Per-base metrics as AtacWorks reports them, plus the seed's window MSE.

Every function takes numpy arrays (flattened here; MSE and Pearson sum in
float64 chunks rather than copying a genome-sized vector) and returns a float,
or ``None`` when the metric is undefined (a constant track has no Pearson correlation; AUPRC needs
both classes). Callers print ``undefined`` instead of crashing, because real
validation sets can lack peaks (AtacWorks crashes there).

At the package top, below every layer, because the search scores its
validation candidates with the same functions evaluate/ reports with.
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


# ---------------------------------------------------------------- streaming accumulators
#
# ``atacdenoise evaluate`` reads the tracks in chunks and never holds a chromosome's bases: each metric
# keeps a small state that chunks add to and that merges across chromosomes.

class Moments:
    """Count, means and centred co-moments of two streams: exact Pearson and MSE in one pass.

    Each chunk's centred sums are computed two-pass in float64, then merged with
    Chan, Golub and LeVeque's pairwise update (as numerically stable as the
    two-pass :func:`pearson`; they agree to ~1e-12 on the HSC data).
    """

    def __init__(self):
        self.n, self.mean_x, self.mean_y = 0, 0.0, 0.0
        self.sxx = self.syy = self.sxy = self.sq_err = 0.0

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        for start in range(0, x.size, _CHUNK):
            xs = x[start:start + _CHUNK].astype(np.float64)
            ys = y[start:start + _CHUNK].astype(np.float64)
            part = Moments()
            part.n, part.mean_x, part.mean_y = xs.size, float(xs.mean()), float(ys.mean())
            dx, dy = xs - part.mean_x, ys - part.mean_y
            part.sxx, part.syy, part.sxy = float(np.sum(dx * dx)), float(np.sum(dy * dy)), float(np.sum(dx * dy))
            diff = xs - ys
            part.sq_err = float(np.sum(diff * diff))
            self.merge(part)

    def merge(self, other: "Moments") -> None:
        if other.n == 0:
            return
        n = self.n + other.n
        dx, dy = other.mean_x - self.mean_x, other.mean_y - self.mean_y
        weight = self.n * other.n / n
        self.sxx += other.sxx + dx * dx * weight
        self.syy += other.syy + dy * dy * weight
        self.sxy += other.sxy + dx * dy * weight
        self.mean_x += dx * other.n / n
        self.mean_y += dy * other.n / n
        self.sq_err += other.sq_err
        self.n = n

    def pearson(self) -> float | None:
        if self.n < 2:
            return None
        denom = np.sqrt(self.sxx * self.syy)
        return None if denom == 0 or not np.isfinite(denom) else float(self.sxy / denom)

    def mse(self) -> float | None:
        return None if self.n == 0 else self.sq_err / self.n


class ScoreCounts:
    """Positive and negative bases per distinct score: exact AUPRC and AUROC without keeping the bases.

    Exact because the curves only ever look at scores through their distinct
    values: every threshold of :func:`auprc`/:func:`auroc` is one distinct score
    (ties share it), and its point depends only on how many positives and
    negatives score at or above it. Counting ``(positives, negatives)`` per
    distinct float32 score (nothing rounded or binned) therefore gives the
    same curve, point for point, as sorting every base. Memory is one entry
    per distinct score (20 bytes): a 25 bp binned track has at most one per bin
    (0.8 MB per Mb, against 4 bytes per base for the scores alone before), and
    in practice fewer (runs of equal bins, zeros).

    Chunks are first collapsed to runs of equal (score, label) (a per-base read
    of a binned track repeats every value ``bin_size`` times), then counted with
    ``np.unique``; pending chunk counts are merged into the sorted table when
    they outgrow it, so the work stays O(n log n) overall.
    """

    def __init__(self):
        self.scores = np.zeros(0, np.float32)
        self.pos = np.zeros(0, np.int64)
        self.neg = np.zeros(0, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_size = 0

    def add(self, scores: np.ndarray, labels: np.ndarray) -> None:
        scores, labels = np.asarray(scores, np.float32).ravel(), np.asarray(labels, bool).ravel()
        if scores.size == 0:
            return
        change = np.flatnonzero((scores[1:] != scores[:-1]) | (labels[1:] != labels[:-1])) + 1
        starts = np.r_[0, change]
        lengths = np.diff(np.r_[starts, scores.size])
        values, inverse = np.unique(scores[starts], return_inverse=True)
        pos = np.bincount(inverse, weights=lengths * labels[starts], minlength=values.size)
        total = np.bincount(inverse, weights=lengths, minlength=values.size)
        self._push(values, pos.astype(np.int64), (total - pos).astype(np.int64))

    def merge(self, other: "ScoreCounts") -> None:
        other._compact()
        self._push(other.scores, other.pos, other.neg)

    def _push(self, values, pos, neg) -> None:
        self._pending.append((values, pos, neg))
        self._pending_size += values.size
        if self._pending_size > max(self.scores.size, 1 << 20):
            self._compact()

    def _compact(self) -> None:
        if not self._pending:
            return
        values = np.concatenate([self.scores, *(p[0] for p in self._pending)])
        pos = np.concatenate([self.pos, *(p[1] for p in self._pending)])
        neg = np.concatenate([self.neg, *(p[2] for p in self._pending)])
        self._pending, self._pending_size = [], 0
        self.scores, inverse = np.unique(values, return_inverse=True)
        # int64 sums via bincount's float64 weights: exact below 2**53 bases
        self.pos = np.bincount(inverse, weights=pos, minlength=self.scores.size).astype(np.int64)
        self.neg = np.bincount(inverse, weights=neg, minlength=self.scores.size).astype(np.int64)

    def auprc(self) -> float | None:
        """:func:`auprc` from the counts: the same thresholds, precisions and recall steps."""
        self._compact()
        n_pos, n_neg = int(self.pos.sum()), int(self.neg.sum())
        if n_pos == 0 or n_neg == 0:
            return None
        pos, total = self.pos[::-1], (self.pos + self.neg)[::-1]  # descending score
        precision = np.cumsum(pos) / np.cumsum(total)
        return float(np.sum(precision * (pos / n_pos)))

    def auroc(self) -> float | None:
        """:func:`auroc` from the counts: positives beat the negatives below them, ties count half."""
        self._compact()
        n_pos, n_neg = int(self.pos.sum()), int(self.neg.sum())
        if n_pos == 0 or n_neg == 0:
            return None
        neg_below = np.cumsum(self.neg) - self.neg
        wins = np.sum(self.pos.astype(np.float64) * (neg_below + 0.5 * self.neg))
        return float(wins / n_pos / n_neg)


SPEARMAN_SAMPLE = 1_000_000  # bases; the standard error of a Spearman correlation on 1M pairs is < 0.001


class RankSample:
    """A uniform random sample of at most ``size`` (x, y) pairs of a stream, for Spearman's correlation.

    Spearman needs every value's rank over the whole stream; instead it is
    computed on a bottom-k sample (each pair gets a uniform random key, the
    ``size`` smallest keys are kept), which merges exactly across chromosomes.
    When the stream has at most ``size`` pairs the sample is the whole stream
    and the value is exact. Deterministic for a given ``seed`` and input.
    """

    def __init__(self, size: int = SPEARMAN_SAMPLE, seed: int = 0):
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.keys = np.zeros(0, np.float64)
        self.x = np.zeros(0, np.float32)
        self.y = np.zeros(0, np.float32)

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        keys = self.rng.random(x.size)
        if self.keys.size >= self.size:
            keep = keys < self.keys.max()
            keys, x, y = keys[keep], x[keep], y[keep]
        self._extend(keys, np.asarray(x, np.float32), np.asarray(y, np.float32))

    def merge(self, other: "RankSample") -> None:
        self._extend(other.keys, other.x, other.y)

    def _extend(self, keys, x, y) -> None:
        self.keys = np.concatenate([self.keys, keys])
        self.x, self.y = np.concatenate([self.x, x]), np.concatenate([self.y, y])
        if self.keys.size > 2 * self.size:
            self._trim()

    def _trim(self) -> None:
        if self.keys.size > self.size:
            keep = np.argpartition(self.keys, self.size - 1)[:self.size]
            self.keys, self.x, self.y = self.keys[keep], self.x[keep], self.y[keep]

    def spearman(self) -> float | None:
        self._trim()
        return spearman(self.x, self.y)
