"""Per-base evaluation of a predicted track against a truth track, chromosome by chromosome.

Metrics follow AtacWorks: Pearson, Spearman and MSE over all scored bases and
separately inside and outside truth peaks; AUROC and AUPRC of a peak score
against truth-peak bases; precision, recall and F1 of called peak bases.
Only bases inside the regions BED (where the truth is defined) are scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from atacdenoise import metrics


def upsample_bins(values: np.ndarray, bin_size: int, length: int) -> np.ndarray:
    """Per-bin values -> per-base values (each bin's value repeated over its bases)."""
    return np.repeat(np.asarray(values, np.float32), bin_size)[:length]


@dataclass
class Scored:
    """Per-base vectors gathered from the scored regions of every chromosome."""

    signal: list = field(default_factory=list)
    truth: list = field(default_factory=list)
    in_peak: list = field(default_factory=list)
    score: list = field(default_factory=list)
    called: list = field(default_factory=list)

    def add(self, region: np.ndarray, signal, truth, truth_peaks, score=None, called=None) -> None:
        self.signal.append(np.asarray(signal, np.float32)[region])
        self.truth.append(np.asarray(truth, np.float32)[region])
        self.in_peak.append(truth_peaks[region])
        if score is not None:
            self.score.append(np.asarray(score, np.float32)[region])
        if called is not None:
            self.called.append(np.asarray(called, bool)[region])

    def metrics(self) -> dict[str, float | None]:
        signal, truth = np.concatenate(self.signal), np.concatenate(self.truth)
        in_peak = np.concatenate(self.in_peak)
        result = {
            "pearson": metrics.pearson(signal, truth),
            "spearman": metrics.spearman(signal, truth),
            "mse": metrics.mse(signal, truth),
            "pearson_in_peaks": metrics.pearson(signal[in_peak], truth[in_peak]),
            "pearson_outside_peaks": metrics.pearson(signal[~in_peak], truth[~in_peak]),
            "mse_in_peaks": metrics.mse(signal[in_peak], truth[in_peak]),
            "mse_outside_peaks": metrics.mse(signal[~in_peak], truth[~in_peak]),
        }
        score = np.concatenate(self.score) if self.score else signal
        result["auroc"] = metrics.auroc(score, in_peak)
        result["auprc"] = metrics.auprc(score, in_peak)
        if self.called:
            result.update({f"peak_{k}": v for k, v in metrics.base_f1(np.concatenate(self.called), in_peak).items()})
        return result


class StreamingScored:
    """:class:`Scored`'s metrics from chunks, holding none of the bases (``atacdenoise evaluate``).

    Pearson and MSE (overall, in and outside truth peaks) are exact running
    sums (:class:`metrics.Moments`); AUROC and AUPRC are exact from counts per
    distinct score (:class:`metrics.ScoreCounts`); Spearman is computed on a
    uniform sample of at most ``metrics.SPEARMAN_SAMPLE`` bases
    (:class:`metrics.RankSample`, exact when fewer bases are scored). Two
    accumulators merge (chromosomes into the whole), as if one had seen both
    streams. ``seed`` makes the Spearman sample reproducible.
    """

    def __init__(self, seed: int = 0):
        self.all, self.inside, self.outside = metrics.Moments(), metrics.Moments(), metrics.Moments()
        self.counts = metrics.ScoreCounts()
        self.sample = metrics.RankSample(seed=seed)
        self.has_called = False
        self.called_true = self.n_called = 0

    def add(self, region: np.ndarray, signal, truth, truth_peaks, score=None, called=None) -> None:
        signal = np.asarray(signal, np.float32)[region]
        truth = np.asarray(truth, np.float32)[region]
        in_peak = np.asarray(truth_peaks, bool)[region]
        self.all.add(signal, truth)
        self.inside.add(signal[in_peak], truth[in_peak])
        self.outside.add(signal[~in_peak], truth[~in_peak])
        self.sample.add(signal, truth)
        self.counts.add(signal if score is None else np.asarray(score, np.float32)[region], in_peak)
        if called is not None:
            called = np.asarray(called, bool)[region]
            self.has_called = True
            self.called_true += int(np.sum(called & in_peak))
            self.n_called += int(called.sum())

    def merge(self, other: "StreamingScored") -> None:
        for name in ("all", "inside", "outside", "counts", "sample"):
            getattr(self, name).merge(getattr(other, name))
        self.has_called |= other.has_called
        self.called_true += other.called_true
        self.n_called += other.n_called

    def metrics(self) -> dict[str, float | None]:
        result = {
            "pearson": self.all.pearson(),
            "spearman": self.sample.spearman(),
            "mse": self.all.mse(),
            "pearson_in_peaks": self.inside.pearson(),
            "pearson_outside_peaks": self.outside.pearson(),
            "mse_in_peaks": self.inside.mse(),
            "mse_outside_peaks": self.outside.mse(),
            "auroc": self.counts.auroc(),
            "auprc": self.counts.auprc(),
        }
        if self.has_called:
            tp, n_true = self.called_true, self.inside.n
            precision = tp / self.n_called if self.n_called else None
            recall = tp / n_true if n_true else None
            f1 = None
            if precision is not None and recall is not None:
                f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
            result.update(peak_precision=precision, peak_recall=recall, peak_f1=f1)
        return result
