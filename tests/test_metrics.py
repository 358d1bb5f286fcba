"""Metrics against brute-force definitions, and 'undefined' instead of crashes."""

import numpy as np
import pytest

from atacdenoise import metrics


def brute_average_precision(scores, labels):
    """AP = sum over distinct thresholds of (R_t - R_{t-1}) * P_t, thresholds from high to low."""
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        called = scores >= t
        tp = np.sum(called & labels)
        recall, precision = tp / labels.sum(), tp / called.sum()
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def brute_auroc(scores, labels):
    pos, neg = scores[labels], scores[~labels]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (pos.size * neg.size)


@pytest.mark.parametrize("seed", range(5))
def test_auprc_and_auroc_match_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 8, 300).astype(float)  # many ties on purpose
    labels = rng.random(300) < 0.3 + 0.05 * scores
    assert metrics.auprc(scores, labels) == pytest.approx(brute_average_precision(scores, labels))
    assert metrics.auroc(scores, labels) == pytest.approx(brute_auroc(scores, labels))


def test_ties_and_matrices():
    assert metrics.auprc(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)
    windows = np.arange(12.0).reshape(3, 4)  # (windows, bins) arrays are flattened
    assert metrics.pearson(windows, 2 * windows) == pytest.approx(1.0)
    assert metrics.auprc(windows, windows > 6) == pytest.approx(1.0)


def test_perfect_and_reversed_rankings():
    labels = np.array([0, 0, 1, 1], bool)
    assert metrics.auprc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == pytest.approx(1.0)
    assert metrics.auroc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == pytest.approx(0.0)


def test_correlations_and_mse():
    x = np.arange(10.0)
    assert metrics.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert metrics.spearman(x, x**3) == pytest.approx(1.0)
    assert metrics.pearson(x, -x) == pytest.approx(-1.0)
    assert metrics.mse(x, x + 2) == pytest.approx(4.0)


def test_undefined_metrics_are_none_not_errors():
    flat = np.zeros(50)
    assert metrics.pearson(flat, np.arange(50.0)) is None
    assert metrics.auprc(np.arange(50.0), np.zeros(50, bool)) is None
    assert metrics.auroc(np.arange(50.0), np.ones(50, bool)) is None
    assert metrics.base_f1(np.zeros(5), np.zeros(5))["f1"] is None
    assert metrics.format_metric(None) == "undefined"


def test_base_f1():
    called = np.array([1, 1, 0, 0, 1], bool)
    truth = np.array([1, 0, 0, 1, 1], bool)
    result = metrics.base_f1(called, truth)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)


def real_shaped(n: int, seed: int):
    """Per-base float32 tracks as the evaluation sees them: sparse truth, many exact zeros and ties, ~5 % peaks."""
    rng = np.random.default_rng(seed)
    in_peak = np.repeat(rng.random(-(-n // 500)) < 0.05, 500)[:n]
    truth = np.where(in_peak, rng.gamma(2.0, 5.0, n), rng.gamma(0.3, 0.5, n)).astype(np.float32)
    truth[rng.random(n) < 0.3] = 0
    signal = (truth * rng.gamma(4.0, 0.25, n).astype(np.float32)).round(1)
    return signal, truth, in_peak


@pytest.mark.parametrize("kind", ["random", "real-shaped"])
def test_hand_written_metrics_equal_scipy_and_sklearn(kind):
    """The kept hand-written metrics (faster or deterministic: benchmarks/bench_metrics.py) equal the libraries."""
    from scipy.stats import pearsonr, spearmanr
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn (dev extra) checks the metrics")

    rng = np.random.default_rng(7)
    n = 3_000_000 + 17  # several of pearson's chunks, the last one partial
    if kind == "random":
        signal, truth = rng.normal(size=n), rng.normal(size=n) + 0.1 * np.arange(n) / n
        in_peak = rng.random(n) < 0.2 + 0.3 * (signal > 1)
    else:
        signal, truth, in_peak = real_shaped(n, seed=3)
    as64 = signal.astype(np.float64), truth.astype(np.float64)
    assert abs(metrics.pearson(signal, truth) - pearsonr(*as64).statistic) < 1e-9
    assert abs(metrics.spearman(signal[:200_000], truth[:200_000])
               - spearmanr(signal[:200_000], truth[:200_000]).statistic) < 1e-9
    assert abs(metrics.auprc(signal, in_peak) - sklearn_metrics.average_precision_score(in_peak, signal)) < 1e-6
    assert abs(metrics.auroc(signal, in_peak) - sklearn_metrics.roc_auc_score(in_peak, signal)) < 1e-6
    assert metrics.mse(signal, truth) == pytest.approx(np.mean((as64[0] - as64[1]) ** 2), rel=1e-12)


def test_pearson_does_not_depend_on_chunk_boundaries():
    """Chunked sums in a fixed order: the same value for the same input, whatever the array's dtype."""
    signal, truth, _ = real_shaped(2_500_000, seed=1)
    first = metrics.pearson(signal, truth)
    assert metrics.pearson(signal, truth) == first
    assert metrics.pearson(signal.astype(np.float64), truth.astype(np.float64)) == first
