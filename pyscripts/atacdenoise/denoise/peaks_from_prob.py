"""Peaks from a per-bin peak probability track.

Bins with probability >= ``threshold`` are called; called runs separated by at
most ``max_gap`` uncalled bins are merged into one peak. The summit is the bin
of maximum probability (its centre). Column 7 (signal) holds the maximum
probability in percent (0-100), so the narrowPeak score written by
``write_narrowpeak`` (``min(int(signal * 10), 1000)``) is ``int(1000 * max probability)``.
Hand-written numpy rather than bioframe: see ``io/narrowpeak.py`` for the comparison.
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


class PeakStream:
    """:func:`peaks_from_prob` fed one chunk of a chromosome's probabilities at a time, with the same peaks.

    A run is final once more than ``max_gap`` bins follow it (no later run can
    join it): peaks are called on everything before the last, possibly open
    run, and that run's bins are carried into the next chunk. Memory is one
    chunk plus the open run.
    """

    def __init__(self, chrom: str, bin_size: int, chrom_length: int, threshold: float = 0.5, max_gap: int = 1):
        self.chrom, self.bin_size, self.chrom_length = chrom, bin_size, chrom_length
        self.threshold, self.max_gap = threshold, max_gap
        self._carry, self._offset, self._parts = np.zeros(0, np.float32), 0, []

    def add(self, prob: np.ndarray) -> None:
        buffer = np.concatenate([self._carry, np.asarray(prob, np.float32)])
        first, last = called_runs(buffer >= self.threshold, self.max_gap)
        cut = int(first[-1]) if len(first) and len(buffer) - last[-1] <= self.max_gap else len(buffer)
        self._emit(buffer[:cut])
        self._carry, self._offset = buffer[cut:], self._offset + cut

    def finish(self) -> Peaks:
        self._emit(self._carry)
        self._carry = np.zeros(0, np.float32)
        parts = self._parts or [peaks_from_prob(self.chrom, np.zeros(0, np.float32), self.bin_size, 0)]
        return Peaks(self.chrom, *(np.concatenate([getattr(p, name) for p in parts])
                                   for name in ("starts", "ends", "signal", "summits")))

    def _emit(self, prob: np.ndarray) -> None:
        if len(prob) == 0:
            return
        shift = self._offset * self.bin_size
        peaks = peaks_from_prob(self.chrom, prob, self.bin_size, self.chrom_length - shift, self.threshold,
                                self.max_gap)
        if len(peaks.starts):
            self._parts.append(Peaks(self.chrom, peaks.starts + shift, peaks.ends + shift, peaks.signal,
                                     peaks.summits))
