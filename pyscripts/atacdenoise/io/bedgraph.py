"""Binned tracks as bgzipped bedGraph, written chunk by chunk beside the bigWig.

Some tools take bedGraph only (bedtools, older browsers, spreadsheets); the
bigWig stays the main output. The writer has :class:`~atacdenoise.io.bigwig.BigWigWriter`'s
``add(chrom, first_bin, values)`` so one loop feeds both (:class:`TrackWriters`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from atacdenoise.io.atomic import atomic_path

VALUE_FORMAT = "%.7g"  # float32 holds ~7 significant digits


def bedgraph_path(bigwig: str | os.PathLike) -> Path:
    """``P.bw`` -> ``P.bedGraph.gz``."""
    path = Path(bigwig)
    return path.with_name(path.name.removesuffix(".bw") + ".bedGraph.gz")


class BedGraphWriter:
    """bedGraph (BGZF-compressed when the name ends in ``.gz``) of a binned track, atomically.

    Chromosomes in ``chrom_sizes`` order, bins in increasing order (the order the bigWig needs too). Runs of
    equal bins become one line, also across the chunks given to :meth:`add` (one pending run is all the
    state kept), so the file does not depend on the chunking; zero bins are left out (bedGraph readers
    treat missing as 0) and a chromosome's last, partial bin is clipped to its end. NaN is written as 0.
    """

    def __init__(self, path: str | os.PathLike, chrom_sizes: dict[str, int], bin_size: int):
        self.path, self.chrom_sizes, self.bin_size = Path(path), dict(chrom_sizes), bin_size
        self._run: tuple[str, int, int, float] | None = None  # chrom, first bin, end bin, value

    def __enter__(self) -> "BedGraphWriter":
        import pysam

        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._out = pysam.BGZFile(str(tmp), "wb1") if self.path.name.endswith(".gz") else open(tmp, "wb")
        return self

    def __exit__(self, *exc) -> bool | None:
        try:
            if exc[0] is None:
                self._flush()
            self._out.close()
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self._atomic.__exit__(*exc)

    def add(self, chrom: str, first_bin: int, values: np.ndarray) -> None:
        values = np.nan_to_num(np.asarray(values, np.float32), nan=0.0)
        if not len(values):
            return
        if self._run is not None and (self._run[0] != chrom or self._run[2] != first_bin):
            self._flush()
        # Runs of equal values within the chunk: [start, end) bin indices and their value.
        change = np.flatnonzero(values[1:] != values[:-1]) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(values)]])
        run_values = values[starts]
        if self._run is not None and self._run[3] == run_values[0]:  # the pending run goes on
            starts[0] = self._run[1] - first_bin
        else:
            self._flush()
        self._write_runs(chrom, first_bin + starts[:-1], first_bin + ends[:-1], run_values[:-1])
        self._run = (chrom, int(first_bin + starts[-1]), int(first_bin + ends[-1]), float(run_values[-1]))

    def _flush(self) -> None:
        if self._run is not None:
            chrom, lo, hi, value = self._run
            self._write_runs(chrom, np.array([lo]), np.array([hi]), np.array([value], np.float32))
            self._run = None

    def _write_runs(self, chrom: str, first: np.ndarray, end: np.ndarray, values: np.ndarray) -> None:
        keep = values != 0
        if not keep.any():
            return
        length = self.chrom_sizes[chrom]
        starts = first[keep].astype(np.int64) * self.bin_size
        ends = np.minimum(end[keep].astype(np.int64) * self.bin_size, length)
        text = "".join(f"{chrom}\t{s}\t{e}\t{VALUE_FORMAT % v}\n"
                       for s, e, v in zip(starts.tolist(), ends.tolist(), values[keep].tolist()))
        self._out.write(text.encode())


def write_bedgraph(path: str | os.PathLike, chrom_sizes: dict[str, int], tracks, bin_size: int,
                   chunk_bins: int = 1 << 20) -> None:
    """Write ``(chrom, values)`` tracks (memory-mapped arrays are fine) ``chunk_bins`` bins at a time."""
    with BedGraphWriter(path, chrom_sizes, bin_size) as writer:
        for chrom, values in tracks:
            for first in range(0, len(values), chunk_bins):
                writer.add(chrom, first, values[first:first + chunk_bins])


class TrackWriters:
    """Several track writers (bigWig, bedGraph) fed by one ``add(chrom, first_bin, values)``."""

    def __init__(self, *writers):
        self.writers = writers

    def add(self, chrom: str, first_bin: int, values: np.ndarray) -> None:
        for writer in self.writers:
            writer.add(chrom, first_bin, values)
