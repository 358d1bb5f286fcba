"""Windows: 4096-bin inputs whose centre 1024 bins are the targets (the seed's geometry).

Training windows are sampled uniformly (as in the seed); inference windows tile
a chromosome so that the centre targets cover it exactly once (edges padded
with zeros). Validation and test sets are whole held-out chromosomes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atacdenoise.errors import InputError


@dataclass(frozen=True)
class WindowSpec:
    window_bins: int = 4096
    target_bins: int = 1024

    @property
    def flank(self) -> int:
        return (self.window_bins - self.target_bins) // 2


def sample_starts(n_bins_by_chrom: dict[str, int], n: int, spec: WindowSpec, rng: np.random.Generator) -> list[tuple[str, int]]:
    """``n`` windows uniform over all valid positions (chromosomes weighted by length).

    A start is valid when the whole window lies inside the chromosome, so every
    valid (chromosome, start) pair is equally likely.
    """
    chroms = list(n_bins_by_chrom)
    n_valid = np.array([max(n_bins_by_chrom[c] - spec.window_bins + 1, 0) for c in chroms], dtype=np.int64)
    if n_valid.sum() == 0:
        raise InputError(None, f"no chromosome is long enough for a {spec.window_bins}-bin window "
                               f"(longest: {max(n_bins_by_chrom.values(), default=0)} bins)")
    # One uniform draw over the concatenated valid starts of all chromosomes.
    flat = rng.integers(0, n_valid.sum(), size=n)
    offsets = np.cumsum(n_valid)
    chrom_index = np.searchsorted(offsets, flat, side="right")
    starts = flat - (offsets - n_valid)[chrom_index]
    return [(chroms[i], int(s)) for i, s in zip(chrom_index, starts)]


def tile_starts(n_bins: int, spec: WindowSpec) -> np.ndarray:
    """Window starts (may be negative: padded) whose target centres tile ``[0, n_bins)``."""
    n_windows = -(-n_bins // spec.target_bins)
    return np.arange(n_windows, dtype=np.int64) * spec.target_bins - spec.flank


def extract(track: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``(len(starts), length)`` float32 slices of ``track``; out-of-range bins are 0."""
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0:
        return np.zeros((0, length), dtype=np.float32)
    # Copy the span the windows touch into a zero-padded buffer (a memory-mapped
    # track is read only there), then take every window as a view of it.
    lo, hi = int(starts.min()), int(starts.max()) + length
    buffer = np.zeros(hi - lo, dtype=np.float32)
    src_lo, src_hi = max(lo, 0), min(hi, len(track))
    if src_hi > src_lo:
        buffer[src_lo - lo : src_hi - lo] = track[src_lo:src_hi]
    return np.lib.stride_tricks.sliding_window_view(buffer, length)[starts - lo]


def split_chromosomes(chroms: list[str], val: list[str], test: list[str]) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}``; InputError for unknown or overlapping names."""
    unknown = [c for c in [*val, *test] if c not in chroms]
    if unknown:
        raise InputError(None, f"unknown chromosome(s) {', '.join(unknown)}; available: {', '.join(chroms)}")
    overlap = sorted(set(val) & set(test))
    if overlap:
        raise InputError(None, f"chromosome(s) {', '.join(overlap)} are in both the validation and the test set")
    held_out = set(val) | set(test)
    train = [c for c in chroms if c not in held_out]
    if not train:
        raise InputError(None, "no chromosome left for training")
    return {"train": train, "val": list(val), "test": list(test)}


def _check_compatible(reference, other) -> None:
    """Stores must share bin size and chromosome lengths, or windows would not line up."""
    if reference.bin_size != other.bin_size:
        raise InputError(other.path, f"bin size {other.bin_size} differs from {reference.bin_size} in {reference.path}")
    for chrom in set(reference.chrom_sizes) & set(other.chrom_sizes):
        if reference.chrom_sizes[chrom] != other.chrom_sizes[chrom]:
            raise InputError(other.path, f"{chrom} is {other.chrom_sizes[chrom]:,} bp but "
                                         f"{reference.chrom_sizes[chrom]:,} bp in {reference.path}")


def _check_chroms_present(stores, chroms: list[str]) -> None:
    for store in stores:
        missing = [c for c in chroms if c not in store.chrom_sizes]
        if missing:
            raise InputError(store.path, f"no track for chromosome(s) {', '.join(missing)}")


def make_windows(noisy_store, clean_store, chroms: list[str], n: int | None, spec: WindowSpec, seed: int, clean_peaks_store=None) -> dict[str, np.ndarray]:
    """Pairs for training: ``{"inputs": (n, window), "targets": (n, target), "peaks": (n, target), "chrom", "start"}``.

    ``n=None`` tiles the chromosomes instead of sampling. Stores must agree on
    bin size and chromosome lengths (InputError naming both otherwise).
    ``peaks`` (1.0 where the clean peak-signal track is > 0) is present only
    when ``clean_peaks_store`` is given. ``start`` is the window's first bin.
    """
    stores = [s for s in (noisy_store, clean_store, clean_peaks_store) if s is not None]
    for other in stores[1:]:
        _check_compatible(noisy_store, other)
    if not chroms:
        raise InputError(None, "no chromosomes given to cut windows from")
    _check_chroms_present(stores, chroms)

    if n is None:
        starts_by_chrom = {c: tile_starts(noisy_store.n_bins(c), spec) for c in chroms}
    else:
        sampled = sample_starts({c: noisy_store.n_bins(c) for c in chroms}, n, spec, np.random.default_rng(seed))
        # grouped by chromosome and sorted, so reads of memory-mapped tracks are local
        starts_by_chrom = {c: np.sort(np.array([s for sc, s in sampled if sc == c], dtype=np.int64)) for c in chroms}

    parts: dict[str, list[np.ndarray]] = {"inputs": [], "targets": [], "peaks": [], "chrom": [], "start": []}
    for chrom, starts in starts_by_chrom.items():
        centre = starts + spec.flank
        parts["inputs"].append(extract(noisy_store.array(chrom), starts, spec.window_bins))
        parts["targets"].append(extract(clean_store.array(chrom), centre, spec.target_bins))
        if clean_peaks_store is not None:
            peak_signal = extract(clean_peaks_store.array(chrom), centre, spec.target_bins)
            parts["peaks"].append((peak_signal > 0).astype(np.float32))
        parts["chrom"].append(np.full(len(starts), chrom))
        parts["start"].append(starts)
    if clean_peaks_store is None:
        del parts["peaks"]
    return {key: np.concatenate(arrays) for key, arrays in parts.items()}


def extract_channels(channels: np.ndarray, starts: np.ndarray, window_bins: int) -> np.ndarray:
    """``(F, n_bins)`` genome channels -> ``(n, F, window_bins)`` windows at ``starts`` (as :func:`extract`)."""
    return np.stack([extract(channel, starts, window_bins) for channel in channels], axis=1)
