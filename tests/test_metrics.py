"""Metrics against brute-force definitions, and 'undefined' instead of crashes."""

import numpy as np
import pytest

from atacdenoise.evaluate import metrics


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
