"""Benchmark: our metrics vs scikit-learn / SciPy on genome-sized per-base vectors.

Issue 18 asks to use the libraries unless a hand-written metric is measurably
faster on genome-sized vectors (10-250M values). This prints, per size and
metric, the wall time and the peak extra memory (``tracemalloc``: numpy
reports its buffers to it) of ``atacdenoise.metrics`` and of the
library call, and the absolute difference of their values.

Inputs look like the evaluation's: float32 signal and truth (a Gamma-noised
copy of a sparse truth with many exact zeros, so ties are many), a bool peak
mask. Memory is what limits: at 250M values one float64 copy is 2 GB.

    python benchmarks/bench_metrics.py                     # 10M and 30M values, ~3 min
    python benchmarks/bench_metrics.py --sizes 10e6 250e6  # genome-sized; needs ~20 GB free
"""

from __future__ import annotations

import argparse
import gc
import logging
import time
import tracemalloc

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

from atacdenoise import metrics

log = logging.getLogger("bench_metrics")


def make_vectors(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Truth with peaks over ~5 % of bases, a noisy prediction of it, the peak mask and a peak score."""
    rng = np.random.default_rng(seed)
    in_peak = np.repeat(rng.random(-(-n // 500)) < 0.05, 500)[:n]
    truth = np.where(in_peak, rng.gamma(2.0, 5.0, n), rng.gamma(0.3, 0.5, n)).astype(np.float32)
    truth[rng.random(n) < 0.3] = 0.0
    signal = (truth * rng.gamma(4.0, 0.25, n).astype(np.float32)).round(1)  # rounding: many ties
    return {"signal": signal, "truth": truth, "in_peak": in_peak, "score": signal}


def measure(fn, *args) -> tuple[float, float, float]:
    """(value, seconds, peak extra MB) of one call."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    value = fn(*args)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return float("nan") if value is None else float(value), seconds, peak


CASES = {
    # name: (ours, library, which vectors)
    "pearson": (metrics.pearson, lambda x, y: pearsonr(x.astype(np.float64), y.astype(np.float64)).statistic,
                ("signal", "truth")),
    "spearman": (metrics.spearman, lambda x, y: spearmanr(x, y).statistic, ("signal", "truth")),
    "auprc": (metrics.auprc, lambda s, y: average_precision_score(y, s), ("score", "in_peak")),
    "auroc": (metrics.auroc, lambda s, y: roc_auc_score(y, s), ("score", "in_peak")),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[10e6, 30e6],
                        help="vector lengths (default: %(default)s)")
    parser.add_argument("--metrics", nargs="+", default=list(CASES), choices=list(CASES),
                        help="metrics to run (default: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info(f"{'values':>12} {'metric':<9} {'ours s':>8} {'lib s':>8} {'ours MB':>9} {'lib MB':>9} {'|diff|':>9}")
    for size in args.sizes:
        data = make_vectors(int(size))
        for name in args.metrics:
            ours, library, keys = CASES[name]
            vectors = [data[k] for k in keys]
            mine, t_mine, m_mine = measure(ours, *vectors)
            theirs, t_lib, m_lib = measure(library, *vectors)
            log.info(f"{int(size):>12,} {name:<9} {t_mine:>8.2f} {t_lib:>8.2f} {m_mine:>9,.0f} {m_lib:>9,.0f} "
                     f"{abs(mine - theirs):>9.1e}")
        del data


if __name__ == "__main__":
    main()
