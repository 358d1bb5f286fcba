"""25 bp (configurable) tracks, computed chromosome by chromosome in bounded chunks.

Two representations:
- ``peak-signal`` (the seed's): narrowPeak signal value, maximum per bin, 0 outside peaks;
- ``coverage``: insertions extended +-``extend`` bp (201 bp by default, as
  AtacWorks), summarised per bin by ``stat`` (mean, max or sum), optionally
  scaled to counts per million insertions.
"""

from __future__ import annotations

import os

import numpy as np

from atacdenoise.io.narrowpeak import Peaks

REPRESENTATIONS = ("coverage", "peak-signal")
STATS = ("mean", "max", "sum")


def n_bins(chrom_length: int, bin_size: int) -> int:
    return -(-chrom_length // bin_size)


def coverage_bins(
    positions: np.ndarray,
    chrom_length: int,
    bin_size: int = 25,
    extend: int = 100,
    stat: str = "mean",
    scale: float = 1.0,
    chunk_bases: int = 8_000_000,
) -> np.ndarray:
    """float32 per-bin summary of the coverage of ``[p - extend, p + extend]`` intervals.

    Works in chunks of ``chunk_bases`` so memory does not grow with chromosome length.
    """
    raise NotImplementedError


def peak_signal_bins(peaks: Peaks | None, chrom_length: int, bin_size: int = 25) -> np.ndarray:
    """float32 maximum narrowPeak signal per bin, 0 outside peaks."""
    raise NotImplementedError


def bin_track(
    input_path: str | os.PathLike,
    chrom_sizes: dict[str, int],
    output_prefix: str | os.PathLike,
    representation: str = "coverage",
    bin_size: int = 25,
    extend: int = 100,
    stat: str = "mean",
    normalize: bool = False,
    fmt: str = "auto",
    read_filter=None,
) -> dict[str, str]:
    """Write ``{prefix}.bw`` and the array store ``{prefix}.tracks/``; return both paths.

    ``coverage`` reads insertions from BAM/insertions/fragments (or resamples a
    bigWig); ``peak-signal`` reads a narrowPeak file.
    """
    raise NotImplementedError
