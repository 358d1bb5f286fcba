#!/usr/bin/env python
"""How far can counts alone take a denoiser? An oracle that knows every peak's place and shape.

The shallow library is a random subset of the deep one (on the HSC data the 5M
insertions are a 1-in-16 subset of the 80M; lower depths thin them further).
A denoiser sees only where the few kept insertions fell. Give an oracle far
more: the exact position and shape of every deep-library peak and of the
background between them. All it must estimate is each segment's height (its
deep insertion count) from the shallow insertions that fell in it:

- ``counts``: height = shallow count / keep fraction (unbiased);
- ``counts, empirical Bayes``: the posterior mean under a Gamma prior fitted to
  all peaks (and, separately, to all background blocks) -- the best a model
  can do with one prior for every peak.

Its prediction is the deep coverage with each segment's insertions reweighted
by estimated / true height. Per-base Pearson is measured exactly as
bench_quality.py measures models (chr2, labelled regions, 80M truth). A model
without other information (sequence, other samples) must also find the peaks
and their shapes, so it should not expect to beat these numbers; the gap to
them is the headroom left. (No AUPRC: the oracle is told where the peaks are.)

Usage: python benchmarks/bench_ceiling.py [--depths 0.1,0.2,1.0] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from bench_quality import DATA, Truth, noisy_insertions
from atacdenoise.metrics import format_metric, pearson
from atacdenoise.tracks.deconvolve import coverage_from_counts, insertions_from_coverage

BACKGROUND_BLOCK = 10_000  # bp: background segments, so the oracle knows the local background level too
EXTEND = 100


def segments(positions: np.ndarray, peaks, n_peak_segments: int) -> np.ndarray:
    """Segment of each insertion: the truth peak it falls in, else its background block."""
    index = np.searchsorted(peaks.starts, positions, side="right") - 1
    inside = (index >= 0) & (positions < peaks.ends[np.clip(index, 0, None)])
    return np.where(inside, index, n_peak_segments + positions // BACKGROUND_BLOCK)


def posterior_mean(counts: np.ndarray) -> np.ndarray:
    """E[rate | count] under a Gamma prior fitted by moments (Poisson counts); raw counts if no overdispersion."""
    mean, var = counts.mean(), counts.var()
    if var <= mean or mean == 0:
        return counts.astype(float)
    shape, rate = mean ** 2 / (var - mean), mean / (var - mean)
    return (shape + counts) / (rate + 1)


def weighted_coverage(positions: np.ndarray, weights: np.ndarray, length: int) -> np.ndarray:
    counts = np.bincount(positions + EXTEND, weights=weights, minlength=length + 2 * EXTEND)
    return coverage_from_counts(counts[:length + 2 * EXTEND], EXTEND)


def oracle_tracks(deep: np.ndarray, shallow: np.ndarray, keep: float, peaks, length: int) -> dict[str, np.ndarray]:
    n_peaks = len(peaks.starts)
    deep_segment, shallow_segment = segments(deep, peaks, n_peaks), segments(shallow, peaks, n_peaks)
    n_segments = n_peaks + length // BACKGROUND_BLOCK + 1
    deep_counts = np.bincount(deep_segment, minlength=n_segments).astype(float)
    shallow_counts = np.bincount(shallow_segment, minlength=n_segments).astype(float)
    has_deep = deep_counts > 0
    shrunk = shallow_counts.copy()
    for group in (np.arange(n_segments) < n_peaks, np.arange(n_segments) >= n_peaks):
        shrunk[group & has_deep] = posterior_mean(shallow_counts[group & has_deep])
    out = {}
    for name, estimate in (("counts", shallow_counts), ("counts, empirical Bayes", shrunk)):
        scale = np.divide(estimate / keep, deep_counts, out=np.zeros(n_segments), where=has_deep)
        out[name] = weighted_coverage(deep, scale[deep_segment], length)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="0.1,0.2,1.0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chrom", default="chr2")
    args = parser.parse_args(argv)
    if not (DATA / "chrom.sizes").exists():
        print(f"bench_ceiling: real data not found at {DATA}; nothing to measure", file=sys.stderr)
        return 1
    truth = Truth(DATA)
    chrom, length = args.chrom, truth.sizes[args.chrom]
    true_cov, _, region = truth.chrom(chrom)
    deep_library = dict(insertions_from_coverage(DATA / "clean_80M.coverage.bw", truth.sizes, truth.regions))
    deep, deep_total = deep_library[chrom], sum(len(p) for p in deep_library.values())
    reference = sum(len(p) for p in noisy_insertions(DATA, truth.sizes, 1.0, args.seed).values())
    print(f"{chrom}: {len(deep):,} deep insertions recovered; shallow library {reference:,} insertions, "
          f"deep {deep_total:,} (keep fraction at depth 1: 1/{deep_total / reference:.1f})")
    print(f"\nOracle ceiling on {chrom} (per base inside the labelled regions, truth = 80M-read library)")
    print("| depth | oracle | pearson |")
    print("| --- | --- | --- |")
    for p in (float(x) for x in args.depths.split(",")):
        shallow = noisy_insertions(DATA, truth.sizes, p, args.seed)[chrom]
        keep = p * reference / deep_total
        for name, track in oracle_tracks(deep, shallow, keep, truth.peaks[chrom], length).items():
            print(f"| {p * 5:g}M (p={p:g}) | {name} | {format_metric(pearson(track[region], true_cov[region]))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
