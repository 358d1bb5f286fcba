"""Peaks from a per-bin peak probability track.

Bins with probability >= ``threshold`` are called; called runs separated by at
most ``max_gap`` uncalled bins are merged into one peak. The summit is the bin
of maximum probability (its centre). Column 7 (signal) holds the maximum
probability in percent (0-100), so the narrowPeak score written by
``write_narrowpeak`` (``min(int(signal * 10), 1000)``) is ``int(1000 * max probability)``.
"""

from __future__ import annotations

import numpy as np

from atacdenoise.io.narrowpeak import Peaks


def called_runs(called: np.ndarray, max_gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) bin of every merged run of True values."""
    padded = np.concatenate([[False], called, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if len(starts) > 1:
        # A gap of <= max_gap uncalled bins between two runs joins them.
        keep = (starts[1:] - ends[:-1]) > max_gap
        starts = starts[np.r_[True, keep]]
        ends = ends[np.r_[keep, True]]
    return starts, ends


def peaks_from_prob(chrom: str, prob: np.ndarray, bin_size: int, chrom_length: int,
                    threshold: float = 0.5, max_gap: int = 1) -> Peaks:
    """Peaks (base coordinates, clipped to the chromosome) of one chromosome's probability track."""
    prob = np.asarray(prob, dtype=np.float32)
    first, last = called_runs(prob >= threshold, max_gap)
    if len(first) == 0:
        empty = np.zeros(0, np.int64)
        return Peaks(chrom, empty, empty.copy(), np.zeros(0, np.float32), empty.copy())
    # Max and argmax per run in one pass: reduceat for the max, then the first bin equal to it.
    run_max = np.maximum.reduceat(prob, first)
    run_of_bin = np.repeat(np.arange(len(first)), last - first)
    bins = _ranges(first, last)
    is_max = prob[bins] == run_max[run_of_bin]
    summit_bin = bins[is_max][np.unique(run_of_bin[is_max], return_index=True)[1]]
    starts = first.astype(np.int64) * bin_size
    ends = np.minimum(last.astype(np.int64) * bin_size, chrom_length)
    summits = np.minimum(summit_bin.astype(np.int64) * bin_size + bin_size // 2, ends - 1) - starts
    return Peaks(chrom, starts, ends, (100 * run_max).astype(np.float32), summits)


def _ranges(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(a, b)`` for all runs, vectorised."""
    lengths = last - first
    offsets = np.repeat(first - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return np.arange(lengths.sum()) + offsets

