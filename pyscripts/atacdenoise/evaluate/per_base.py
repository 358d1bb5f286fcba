"""Per-base evaluation of a predicted track against a truth track, chromosome by chromosome.

Metrics follow AtacWorks: Pearson, Spearman and MSE over all scored bases and
separately inside and outside truth peaks; AUROC and AUPRC of a peak score
against truth-peak bases; precision, recall and F1 of called peak bases.
Only bases inside the regions BED (where the truth is defined) are scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from atacdenoise.evaluate import metrics


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
