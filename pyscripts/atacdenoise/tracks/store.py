"""The training array store: one ``.npy`` per chromosome plus ``meta.json``.

Layout of ``NAME.tracks/``::

    meta.json     {"format": "atacdenoise-tracks/1", "bin_size": 25,
                   "representation": "coverage", "chrom_sizes": {...},
                   "n_bins": {...}, "source": "...", "params": {...}}
    chr1.npy      float32, one value per bin
    chr2.npy      ...

Plain numpy so anyone can read it; arrays are memory-mapped on read so window
sampling touches only the bins it needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

STORE_FORMAT = "atacdenoise-tracks/1"


@dataclass
class TrackStore:
    path: str
    bin_size: int
    representation: str
    chrom_sizes: dict[str, int]
    meta: dict

    @property
    def chroms(self) -> list[str]:
        return list(self.chrom_sizes)

    def array(self, chrom: str) -> np.ndarray:
        """Memory-mapped float32 bins of ``chrom``."""
        raise NotImplementedError


class StoreWriter:
    """Write a store atomically: ``with StoreWriter(path, ...) as w: w.add(chrom, bins)``."""

    def __init__(self, path, bin_size: int, representation: str, chrom_sizes: dict[str, int], **meta):
        raise NotImplementedError

    def __enter__(self) -> "StoreWriter":
        raise NotImplementedError

    def add(self, chrom: str, bins: np.ndarray) -> None:
        raise NotImplementedError

    def __exit__(self, *exc) -> None:
        raise NotImplementedError


def open_store(path: str | os.PathLike) -> TrackStore:
    """Open a store; InputError when the folder or meta.json is missing or malformed."""
    raise NotImplementedError
