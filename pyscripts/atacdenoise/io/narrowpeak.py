"""narrowPeak / BED peak files."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass
class Peaks:
    """Peaks on one chromosome, sorted by start (0-based half-open)."""

    chrom: str
    starts: np.ndarray   # int64
    ends: np.ndarray     # int64
    signal: np.ndarray   # float32: narrowPeak column 7, or BED score / 1 when absent
    summits: np.ndarray | None = None  # int64 offsets from start, narrowPeak column 10


def read_peaks(path: str | os.PathLike) -> dict[str, Peaks]:
    """Read narrowPeak (10 columns) or plain BED (>= 3 columns) into per-chrom Peaks.

    Malformed lines raise InputError naming the file and line number.
    """
    raise NotImplementedError


def write_narrowpeak(path: str | os.PathLike, peaks: list[Peaks], name_prefix: str = "peak") -> None:
    """Write narrowPeak atomically."""
    raise NotImplementedError
