"""Where training targets may lie and how they are labelled: shared by frozen pairs (:mod:`.data`) and the
resampling source (:mod:`.resample`), so that neither imports the other's internals."""

from __future__ import annotations

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.narrowpeak import bins_inside
from atacdenoise.tracks.bin_grid import n_bins
from atacdenoise.tracks.windows import WindowSpec


def channel_meta(genome) -> dict:
    """What pairs and sources record of their genome channels (read back into the model contract)."""
    if genome is None:
        return {"channels": [], "sequence_md5": {}, "masks": []}
    return {"channels": [spec.to_dict() for spec in genome.specs], "sequence_md5": dict(genome.md5),
            "masks": ["blacklist"] if genome.has_blacklist else []}


def check_depths(depths) -> tuple[float, ...]:
    depths = tuple(float(d) for d in depths)
    if not depths or any(not 0 < d <= 1 for d in depths):
        raise InputError(None, f"depths must lie in (0, 1], got {list(depths)}")
    return depths


def peak_label_bins(peaks, length: int, bin_size: int) -> np.ndarray:
    """1.0 for every bin that any peak overlaps by at least one base, else 0.0."""
    labels = np.zeros(n_bins(length, bin_size) + 1, np.int32)
    if peaks is not None and len(peaks.starts):
        first = np.clip(peaks.starts // bin_size, 0, len(labels) - 1)
        last = np.clip(-(-peaks.ends // bin_size), 0, len(labels) - 1)  # exclusive
        np.add.at(labels, first, 1)
        np.add.at(labels, last, -1)
    return (np.cumsum(labels[:-1]) > 0).astype(np.float32)


def scored_bins(regions, chrom: str, length: int, bin_size: int, genome=None) -> np.ndarray | None:
    """True for bins wholly inside ``regions`` and untouched by the genome's blacklist
    (None: no regions and no blacklist, every bin is scored)."""
    blacklisted = genome.blacklist_bins(chrom) if genome is not None else None
    if regions is None:
        return None if blacklisted is None else ~blacklisted
    scored = bins_inside(regions.get(chrom), length, bin_size, rule="whole")
    return scored if blacklisted is None else scored & ~blacklisted


def allowed_starts(total_bins: int, spec: WindowSpec, scored: np.ndarray | None) -> np.ndarray:
    """Window starts whose window lies in the chromosome and whose target bins are all scored."""
    starts = np.arange(max(total_bins - spec.window_bins + 1, 0), dtype=np.int64)
    return starts[windows_in_regions(starts, spec, scored)]


def windows_in_regions(starts: np.ndarray, spec: WindowSpec, scored: np.ndarray | None) -> np.ndarray:
    """Mask of (possibly padded) window starts whose target bins are all scored; bins off the track are not."""
    if scored is None:
        return np.ones(len(starts), bool)
    # A target is wholly scored when its run of scored bins is target_bins long.
    runs = np.concatenate([[0], np.cumsum(scored.astype(np.int64))])
    first = np.clip(np.asarray(starts, np.int64) + spec.flank, 0, len(scored))
    last = np.clip(np.asarray(starts, np.int64) + spec.flank + spec.target_bins, 0, len(scored))
    return runs[last] - runs[first] == spec.target_bins
