"""bigWig in and out (pyBigWig), one chromosome in memory at a time."""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np


def write_bigwig(
    path: str | os.PathLike,
    chrom_sizes: dict[str, int],
    tracks: Iterable[tuple[str, np.ndarray]],
    bin_size: int,
) -> None:
    """Write per-bin values, atomically.

    ``tracks`` yields ``(chrom, values)`` in ``chrom_sizes`` order, ``values``
    holding one float per ``bin_size`` bin (the last bin may be partial and is
    clipped to the chromosome end). Runs of equal values are merged and zero
    runs are omitted to keep the file small; readers treat missing as 0.
    """
    raise NotImplementedError


def read_bigwig(path: str | os.PathLike, chrom: str, start: int = 0, end: int | None = None) -> np.ndarray:
    """Per-base float32 values of ``chrom[start:end]``; missing data read as 0."""
    raise NotImplementedError


def bigwig_chrom_sizes(path: str | os.PathLike) -> dict[str, int]:
    """The chromosome sizes in a bigWig header."""
    raise NotImplementedError
