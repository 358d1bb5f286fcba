"""bigWig in and out (pyBigWig), one chromosome in memory at a time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path


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
    import pyBigWig

    order = {chrom: i for i, chrom in enumerate(chrom_sizes)}
    last = -1
    with atomic_path(path) as tmp:
        bw = pyBigWig.open(str(tmp), "w")
        try:
            bw.addHeader(list(chrom_sizes.items()), maxZooms=10)
            for chrom, values in tracks:
                if order.get(chrom, -1) <= last:  # bigWig entries must follow the header order
                    raise ValueError(f"write_bigwig: {chrom} is not in chrom_sizes or comes out of order")
                last = order[chrom]
                _add_chrom(bw, chrom, chrom_sizes[chrom], np.asarray(values, dtype=np.float32), bin_size)
        finally:
            bw.close()


def _add_chrom(bw, chrom: str, length: int, values: np.ndarray, bin_size: int) -> None:
    expected = -(-length // bin_size)
    if len(values) != expected:
        raise ValueError(f"write_bigwig: {chrom} has {len(values)} bins, expected {expected} for bin size {bin_size}")
    values = np.nan_to_num(values, nan=0.0)
    # Runs of equal values: a run starts where the value changes.
    run_starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    run_ends = np.r_[run_starts[1:], len(values)]
    run_values = values[run_starts]
    nonzero = run_values != 0
    if not nonzero.any():
        return
    starts = run_starts[nonzero] * bin_size
    ends = np.minimum(run_ends[nonzero] * bin_size, length)
    bw.addEntries([chrom] * len(starts), starts.tolist(), ends=ends.tolist(),
                  values=run_values[nonzero].astype(np.float64).tolist())


def _open_bigwig(path: str | os.PathLike):
    import pyBigWig

    path = Path(path)
    if not path.exists():
        raise InputError(path, "bigWig file does not exist")
    try:
        bw = pyBigWig.open(str(path))
    except RuntimeError:
        bw = None
    if bw is None or not bw.isBigWig():
        raise InputError(path, "not a bigWig file")
    return bw


def read_bigwig(path: str | os.PathLike, chrom: str, start: int = 0, end: int | None = None) -> np.ndarray:
    """Per-base float32 values of ``chrom[start:end]``; missing data read as 0."""
    bw = _open_bigwig(path)
    try:
        sizes = bw.chroms()
        if chrom not in sizes:
            raise InputError(path, f"chromosome {chrom} is not in this bigWig (it has {', '.join(sorted(sizes))})")
        end = sizes[chrom] if end is None else min(end, sizes[chrom])
        start = max(start, 0)
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        values = np.asarray(bw.values(chrom, start, end, numpy=True), dtype=np.float32)
        if values.size != end - start:  # pyBigWig returns an empty array for a file with no data at all
            values = np.zeros(end - start, dtype=np.float32)
    finally:
        bw.close()
    return np.nan_to_num(values, nan=0.0, copy=False)


def bigwig_chrom_sizes(path: str | os.PathLike) -> dict[str, int]:
    """The chromosome sizes in a bigWig header."""
    bw = _open_bigwig(path)
    try:
        return dict(bw.chroms())
    finally:
        bw.close()


def coverage_block_counts(path: str | os.PathLike, chrom_sizes: dict[str, int], extend: int = 100, block: int = 100_000):
    """Yield ``(chrom, insertions per block)`` of a coverage bigWig of +-``extend`` bp extended insertions.

    Each insertion adds ``2 * extend + 1`` to the sum, so block sums / that count insertions
    (to within an insertion at each block edge).
    """
    bw = _open_bigwig(path)
    try:
        in_file = bw.chroms()
        for chrom in chrom_sizes:
            if chrom not in in_file:
                continue
            length, in_bigwig = chrom_sizes[chrom], in_file[chrom]
            sums = [bw.stats(chrom, start, min(start + block, in_bigwig), type="sum", exact=True)[0] or 0.0
                    if start < in_bigwig else 0.0 for start in range(0, length, block)]
            yield chrom, np.nan_to_num(np.asarray(sums, np.float64)) / (2 * extend + 1)
    finally:
        bw.close()
