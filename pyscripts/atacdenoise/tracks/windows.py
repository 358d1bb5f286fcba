"""Windows: 4096-bin inputs whose centre 1024 bins are the targets (the seed's geometry).

Training windows are sampled uniformly (as in the seed); inference windows tile
a chromosome so that the centre targets cover it exactly once (edges padded
with zeros). Validation and test sets are whole held-out chromosomes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowSpec:
    window_bins: int = 4096
    target_bins: int = 1024

    @property
    def flank(self) -> int:
        return (self.window_bins - self.target_bins) // 2


def sample_starts(n_bins_by_chrom: dict[str, int], n: int, spec: WindowSpec, rng: np.random.Generator) -> list[tuple[str, int]]:
    """``n`` windows uniform over all valid positions (chromosomes weighted by length)."""
    raise NotImplementedError


def tile_starts(n_bins: int, spec: WindowSpec) -> np.ndarray:
    """Window starts (may be negative: padded) whose target centres tile ``[0, n_bins)``."""
    raise NotImplementedError


def extract(track: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``(len(starts), length)`` float32 slices of ``track``; out-of-range bins are 0."""
    raise NotImplementedError


def split_chromosomes(chroms: list[str], val: list[str], test: list[str]) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}``; InputError for unknown or overlapping names."""
    raise NotImplementedError


def make_windows(noisy_store, clean_store, chroms: list[str], n: int | None, spec: WindowSpec, seed: int, clean_peaks_store=None) -> dict[str, np.ndarray]:
    """Pairs for training: ``{"inputs": (n, window), "targets": (n, target), "peaks": (n, target), "chrom", "start"}``.

    ``n=None`` tiles the chromosomes instead of sampling. Stores must agree on
    bin size and chromosome lengths (InputError naming both otherwise).
    """
    raise NotImplementedError
