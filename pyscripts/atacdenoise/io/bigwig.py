"""bigWig in (pyBigWig) and out (io/bigwig_writer.py), a chunk of a chromosome in memory at a time."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.bigwig_writer import BigWigWriter


def write_bigwig(
    path: str | os.PathLike,
    chrom_sizes: dict[str, int],
    tracks: Iterable[tuple[str, np.ndarray]],
    bin_size: int,
) -> None:
    """Write per-bin values, atomically.

    ``tracks`` yields ``(chrom, values)`` in ``chrom_sizes`` order, ``values``
    holding one float per ``bin_size`` bin (the last bin may be partial and is
    clipped to the chromosome end). Zero bins are omitted (readers treat
    missing as 0); see :class:`BigWigWriter` for the layout.
    """
    with BigWigWriter(path, chrom_sizes, bin_size) as writer:
        for chrom, values in tracks:
            values = np.asarray(values, dtype=np.float32)
            expected = -(-chrom_sizes.get(chrom, 0) // bin_size)
            if chrom in chrom_sizes and len(values) != expected:
                raise ValueError(f"write_bigwig: {chrom} has {len(values)} bins, expected {expected} "
                                 f"for bin size {bin_size}")
            writer.add(chrom, 0, values)


def round_significant(values: np.ndarray, mantissa_bits: int) -> np.ndarray:
    """float32 ``values`` rounded to ``mantissa_bits`` of float32's 23 stored mantissa bits (to nearest, ties away
    from zero): relative error <= 2 ** -(mantissa_bits + 1). The low bits left zero are what lets zlib pack a
    bigWig's blocks tighter; zero stays zero."""
    if not 0 < mantissa_bits <= 23:
        raise ValueError(f"mantissa_bits must lie in 1..23, got {mantissa_bits}")
    drop = 23 - mantissa_bits
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32)
    if drop == 0:
        return bits.view(np.float32).copy()
    # Adding half a unit of the last kept bit to the magnitude bits, then masking, rounds the magnitude (the sign bit is
    # left alone); a carry out of the mantissa correctly bumps the exponent.
    rounded = (bits + np.uint32(1 << (drop - 1))) & np.uint32(0xFFFFFFFF ^ ((1 << drop) - 1))
    return rounded.view(np.float32)


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


class BigWigReader:
    """One open bigWig, read through one handle: ``with bigwig_reader(path) as bw: bw.values(chrom)``.

    A caller that reads a file many times (sizes, library size, every
    chromosome in chunks: ``prepare`` does all of these on the clean track)
    opens it once and passes the reader down; every function that takes a
    bigWig path also takes a reader.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._given = os.fspath(path)  # as the caller spelled it: recorded in outputs' provenance
        self._bw = _open_bigwig(self.path)
        self.chrom_sizes: dict[str, int] = dict(self._bw.chroms())

    def __fspath__(self) -> str:
        return self._given

    def close(self) -> None:
        self._bw.close()

    def __enter__(self) -> "BigWigReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def values(self, chrom: str, start: int = 0, end: int | None = None) -> np.ndarray:
        """Per-base float32 values of ``chrom[start:end]``; missing data read as 0."""
        sizes = self.chrom_sizes
        if chrom not in sizes:
            raise InputError(self.path, f"chromosome {chrom} is not in this bigWig (it has {', '.join(sorted(sizes))})")
        end = sizes[chrom] if end is None else min(end, sizes[chrom])
        start = max(start, 0)
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        values = np.asarray(self._bw.values(chrom, start, end, numpy=True), dtype=np.float32)
        if values.size != end - start:  # pyBigWig returns an empty array for a file with no data at all
            values = np.zeros(end - start, dtype=np.float32)
        return np.nan_to_num(values, nan=0.0, copy=False)

    def intervals(self, chrom: str, start: int, end: int) -> tuple:
        """The stored ``(start, end, value)`` intervals overlapping ``chrom[start:end]`` (none: ``()``)."""
        return self._bw.intervals(chrom, start, end) or ()

    def block_counts(self, chrom_sizes: dict[str, int], extend: int = 100, block: int = 100_000):
        """See :func:`coverage_block_counts`."""
        for chrom in chrom_sizes:
            if chrom not in self.chrom_sizes:
                continue
            length, in_bigwig = chrom_sizes[chrom], self.chrom_sizes[chrom]
            sums = [self._bw.stats(chrom, start, min(start + block, in_bigwig), type="sum", exact=True)[0] or 0.0
                    if start < in_bigwig else 0.0 for start in range(0, length, block)]
            yield chrom, np.nan_to_num(np.asarray(sums, np.float64)) / (2 * extend + 1)


@contextmanager
def bigwig_reader(source: "str | os.PathLike | BigWigReader") -> Iterator[BigWigReader]:
    """``source`` itself when it is an open reader (left open), else the file opened for the block."""
    if isinstance(source, BigWigReader):
        yield source
        return
    with BigWigReader(source) as reader:
        yield reader


def read_bigwig(path: "str | os.PathLike | BigWigReader", chrom: str, start: int = 0, end: int | None = None) -> np.ndarray:
    """Per-base float32 values of ``chrom[start:end]``; missing data read as 0."""
    with bigwig_reader(path) as bw:
        return bw.values(chrom, start, end)


def bigwig_chrom_sizes(path: "str | os.PathLike | BigWigReader") -> dict[str, int]:
    """The chromosome sizes in a bigWig header."""
    with bigwig_reader(path) as bw:
        return dict(bw.chrom_sizes)


def coverage_block_counts(path: "str | os.PathLike | BigWigReader", chrom_sizes: dict[str, int], extend: int = 100,
                          block: int = 100_000):
    """Yield ``(chrom, insertions per block)`` of a coverage bigWig of +-``extend`` bp extended insertions.

    Each insertion adds ``2 * extend + 1`` to the sum, so block sums / that count insertions
    (to within an insertion at each block edge).
    """
    with bigwig_reader(path) as bw:
        yield from bw.block_counts(chrom_sizes, extend, block)


def binned_chunks(path: "str | os.PathLike | BigWigReader", chrom: str, bin_size: int, chunk_bins: int = 400_000):
    """Yield ``(first_bin, float32 values)`` of a binned bigWig's ``chrom``, ``chunk_bins`` bins at a time.

    Reads the stored intervals (not per-base values), so a chunk costs its
    intervals; bins without data read as 0. Every interval must start on the
    ``bin_size`` grid and end on it or at the chromosome end, as
    :class:`BigWigWriter` writes them (an interval may span several bins).
    """
    with bigwig_reader(path) as bw:
        length = bw.chrom_sizes.get(chrom)
        if length is None:
            raise InputError(path, f"chromosome {chrom} is not in this bigWig")
        total = -(-length // bin_size)
        for lo in range(0, total, chunk_bins):
            hi = min(lo + chunk_bins, total)
            intervals = bw.intervals(chrom, lo * bin_size, min(hi * bin_size, length))
            yield lo, _intervals_to_bins(path, chrom, intervals, length, bin_size, lo, hi)


def _intervals_to_bins(path, chrom: str, intervals, length: int, bin_size: int, lo: int, hi: int) -> np.ndarray:
    """Bins ``[lo, hi)`` filled from ``(start, end, value)`` intervals that lie on the bin grid."""
    values = np.zeros(hi - lo, np.float32)
    if not intervals:
        return values
    table = np.array(intervals, dtype=np.float64)  # positions < 2**32: exact in float64
    starts, ends = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    off_grid = (starts % bin_size != 0) | ((ends % bin_size != 0) & (ends != length))
    if off_grid.any():
        i = int(np.argmax(off_grid))
        raise InputError(path, f"{chrom}:{starts[i]}-{ends[i]} does not lie on the {bin_size} bp bin grid")
    first = np.maximum(starts // bin_size, lo) - lo
    counts = np.minimum(-(-ends // bin_size), hi) - lo - first
    offsets = np.repeat(first - np.r_[0, np.cumsum(counts)[:-1]], counts)
    values[np.arange(counts.sum()) + offsets] = np.repeat(table[:, 2].astype(np.float32), counts)
    return values
