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

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path
from atacdenoise.tracks.bin_grid import n_bins

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
        """Chromosomes with an array in the store, in chrom-sizes order."""
        return list(self.chrom_sizes)

    def n_bins(self, chrom: str) -> int:
        return int(self.meta["n_bins"][chrom])

    def array(self, chrom: str) -> np.ndarray:
        """Memory-mapped float32 bins of ``chrom``."""
        if chrom not in self.chrom_sizes:
            raise InputError(self.path, f"no track for chromosome {chrom!r} (the store has {', '.join(self.chroms) or 'none'})")
        file = Path(self.path) / f"{chrom}.npy"
        if not file.exists():
            raise InputError(self.path, f"{file.name} is missing (listed in meta.json)")
        return np.load(file, mmap_mode="r")


class StoreWriter:
    """Write a store atomically: ``with StoreWriter(path, ...) as w: w.add(chrom, bins)``.

    Arrays go into a temporary folder beside ``path``; ``meta.json`` is written
    and the folder renamed into place only when the ``with`` block succeeds.
    Chromosomes never added are absent from the store (and from its meta.json).
    """

    def __init__(self, path, bin_size: int, representation: str, chrom_sizes: dict[str, int], **meta):
        self.path = Path(path)
        self.bin_size = int(bin_size)
        self.representation = representation
        self.chrom_sizes = dict(chrom_sizes)
        self.meta = meta  # extra meta.json entries (source, params...); may be updated until exit
        self.added: dict[str, int] = {}
        self._atomic = None
        self._tmp: Path | None = None

    def __enter__(self) -> "StoreWriter":
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._tmp.mkdir()
        return self

    def add(self, chrom: str, bins: np.ndarray) -> None:
        if self._tmp is None:
            raise RuntimeError("StoreWriter.add() called outside its 'with' block")
        if chrom not in self.chrom_sizes:
            raise InputError(self.path, f"chromosome {chrom!r} is not in the chrom sizes")
        if chrom in self.added:
            raise InputError(self.path, f"chromosome {chrom!r} added twice")
        expected = n_bins(self.chrom_sizes[chrom], self.bin_size)
        bins = np.asarray(bins, dtype=np.float32)
        if bins.shape != (expected,):
            raise InputError(self.path, f"{chrom}: expected {expected} bins of {self.bin_size} bp, got shape {bins.shape}")
        np.save(self._tmp / f"{chrom}.npy", bins)
        self.added[chrom] = expected

    def rescale(self, factor: float) -> None:
        """Multiply every array added so far by ``factor``, one memory-mapped chromosome at a time.

        Lets a caller normalise by a total it only knows after the last chromosome.
        """
        for chrom in self.added:
            bins = np.load(self._tmp / f"{chrom}.npy", mmap_mode="r+")
            bins *= np.float32(factor)
            bins.flush()
            del bins
        self.meta["scale"] = self.meta.get("scale", 1.0) * factor

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self._write_meta()
        finally:
            # atomic_path renames on success and removes the temporary folder on error
            atomic, self._atomic, self._tmp = self._atomic, None, None
            if exc[0] is None:
                atomic.__exit__(None, None, None)
            else:
                atomic.__exit__(*exc)

    def _write_meta(self) -> None:
        order = [c for c in self.chrom_sizes if c in self.added]
        meta = {
            "format": STORE_FORMAT,
            "bin_size": self.bin_size,
            "representation": self.representation,
            "chrom_sizes": {c: self.chrom_sizes[c] for c in order},
            "n_bins": {c: self.added[c] for c in order},
            **self.meta,
        }
        (self._tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def open_store(path: str | os.PathLike) -> TrackStore:
    """Open a store; InputError when the folder or meta.json is missing or malformed."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "track store folder does not exist")
    meta_file = path / "meta.json"
    if not meta_file.exists():
        raise InputError(path, "not a track store: meta.json is missing")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(meta_file, f"malformed JSON: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise InputError(meta_file, f"expected format {STORE_FORMAT!r}, found {found!r}")
    try:
        bin_size = int(meta["bin_size"])
        chrom_sizes = {str(c): int(n) for c, n in meta["chrom_sizes"].items()}
        meta["n_bins"] = {c: int(meta["n_bins"][c]) for c in chrom_sizes}
        representation = str(meta["representation"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(meta_file, f"malformed track store metadata ({type(err).__name__}: {err})") from None
    return TrackStore(str(path), bin_size, representation, chrom_sizes, meta)
