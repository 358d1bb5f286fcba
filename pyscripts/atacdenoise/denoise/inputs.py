"""What ``denoise`` reads: the input binned in the model's units, one chromosome at a time.

:func:`input_tracks` opens an insertions source (BAM, insertions BED, fragments: :class:`InsertionTracks`) or a
per-base coverage bigWig (:class:`BigWigTracks`), measures the library's depth on all of it (``tracks.depth``)
and yields each chromosome as ``(chrom, n_bins, read)``, ``read(lo, hi)`` giving bins ``[lo, hi)`` exactly as the
model's contract bins them. With ``calibrate`` it also keeps the int8 calibration windows (``denoise.quantize``),
taken from the whole input whatever ``--chroms``.
"""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np

from atacdenoise.denoise.contract import ModelContract
from atacdenoise.errors import InputError

log = logging.getLogger(__name__)


def input_tracks(input, fmt: str, chrom_sizes: dict[str, int], contract: ModelContract, read_filter=None,
                 library_size: float | None = None, chroms: list[str] | None = None, calibrate: bool = False):
    """``(format, tracks)``: the input binned in model units one chromosome at a time, its depth measured on
    all of it (or given as ``library_size``), restricted to ``chroms`` when asked. ``calibrate``: also
    take the int8 calibration windows (``tracks.calibration_windows()``), from the whole input."""
    from atacdenoise.denoise.quantize import sample_places
    from atacdenoise.io.reads import detect_format

    fmt = detect_format(input) if fmt == "auto" else fmt
    places = sample_places(chrom_sizes, contract.window_bins, contract.bin_size) if calibrate else None
    tracks = (BigWigTracks(input, chrom_sizes, contract, places) if fmt == "bigwig"
              else InsertionTracks(input, chrom_sizes, contract, fmt, read_filter, places))
    if library_size is not None:
        from atacdenoise.tracks.depth import given_depth

        tracks.depth = given_depth(library_size, chrom_sizes)
    log.info("%s", tracks.depth.describe())
    tracks.input_order = list(tracks.order)  # the order a whole run writes; merge restores it
    if chroms is not None:  # [] too: a --group with no chromosome writes an empty output set
        # A chromosome without insertions is left empty, as a whole run leaves it (a group of --chroms may
        # hold only such contigs: denoise --group splits the chrom sizes, not the input).
        empty = [c for c in chroms if c not in tracks.order]
        if empty:
            log.info("no insertions on %s (asked for with --chroms): left empty", ", ".join(empty))
        tracks.order = [c for c in tracks.order if c in chroms]
    return fmt, tracks


class InsertionTracks:
    """Binned coverage of an insertions source in model units (``tracks.depth``), one chromosome at a time."""

    def __init__(self, path, chrom_sizes: dict[str, int], contract: ModelContract, fmt: str, read_filter=None,
                 places: dict[str, list[int]] | None = None):
        from atacdenoise.io.reads import iter_insertions
        from atacdenoise.tracks.depth import block_counts, measure_depth

        self.path, self.chrom_sizes, self.contract = path, chrom_sizes, contract
        # One streaming pass measures the library's depth (the scale needs it), fixes the chromosome
        # order of the outputs (text inputs come in file order) and takes the windows at ``places``
        # (their scale waits for the depth). It keeps each chromosome's sorted insertions in a temporary
        # file (4 bytes each, removed with this object), which the denoising pass reads back instead of
        # parsing the input again (~4.6 s for 4 M text lines; more for a BAM).
        blocks, self._spread, self._densest = {}, [], []
        self._spilled, self._files = tempfile.TemporaryDirectory(prefix="atacdenoise-insertions-"), {}
        for chrom, positions in iter_insertions(path, chrom_sizes, fmt, read_filter):
            blocks[chrom] = block_counts(positions, chrom_sizes[chrom])
            if not len(positions):
                continue
            self._files[chrom] = os.path.join(self._spilled.name, f"{len(self._files)}.npy")
            np.save(self._files[chrom], np.sort(positions).astype(np.uint32))  # bigWig lengths are < 2**32
            if places is not None:
                self._sample(chrom, positions, places.get(chrom, []))
        self.order = [c for c in blocks if blocks[c].sum()]
        if not self.order:
            raise InputError(path, "no insertions on the chromosomes of the chrom sizes")
        self.depth = measure_depth(blocks.items(), chrom_sizes, path)

    def _binned(self, chrom: str, positions, scale: float):
        """``read(lo, hi)``: bins ``[lo, hi)`` of ``chrom`` from its insertions (sorted here once)."""
        from atacdenoise.tracks.binning import coverage_bins

        c, length = self.contract, self.chrom_sizes[chrom]
        positions = np.sort(np.asarray(positions, np.int64))
        return lambda lo, hi: coverage_bins(positions, length, c.bin_size, c.extend, c.stat, bins=(lo, hi),
                                            presorted=True, scale=scale)

    def _sample(self, chrom: str, positions, starts: list[int]) -> None:
        """Keep the windows at ``starts`` and, among those at the densest spots so far, the densest."""
        from atacdenoise.denoise.quantize import PEAK_WINDOWS, densest_starts

        c, read = self.contract, self._binned(chrom, positions, 1.0)
        self._spread += [(chrom, start, read(start, start + c.window_bins)) for start in starts]
        dense = densest_starts(positions, self.chrom_sizes[chrom], c.bin_size, c.window_bins)
        self._densest += [(count, chrom, start, read(start, start + c.window_bins)) for count, start in dense]
        self._densest = sorted(self._densest, key=lambda item: item[0])[-PEAK_WINDOWS:]

    def calibration_windows(self) -> tuple[list, list]:
        """``(spread, densest)``: ``(chrom, first bin, window bins)`` at the places given and at the densest
        spots, in model units."""
        scale = np.float32(self.contract.reference_density / self.depth.density)
        spread = [(chrom, start, bins * scale) for chrom, start, bins in self._spread if chrom in self.input_order]
        return spread, [(chrom, start, bins * scale) for _, chrom, start, bins in self._densest
                        if chrom in self.input_order]

    def __iter__(self):
        """``(chrom, n_bins, read)``: ``read(lo, hi)`` gives bins ``[lo, hi)`` (insertions sorted once)."""
        from atacdenoise.tracks.bin_grid import n_bins

        scale = self.contract.reference_density / self.depth.density
        for chrom, spilled in self._files.items():
            if chrom in self.order:
                positions = np.load(spilled).astype(np.int64)
                yield chrom, n_bins(self.chrom_sizes[chrom], self.contract.bin_size), self._binned(chrom, positions,
                                                                                                    scale)


class BigWigTracks:
    """A per-base coverage bigWig (insertions extended +-extend bp), rebinned to the model's bins."""

    def __init__(self, path, chrom_sizes: dict[str, int], contract: ModelContract,
                 places: dict[str, list[int]] | None = None):
        from atacdenoise.io.bigwig import bigwig_chrom_sizes, coverage_block_counts
        from atacdenoise.tracks.depth import BLOCK_BP, measure_depth

        self.path, self.contract, self._places = path, contract, places or {}
        in_file = bigwig_chrom_sizes(path)
        self.order = [chrom for chrom in chrom_sizes if chrom in in_file]
        if not self.order:
            from atacdenoise.io.chromsizes import naming_hint

            raise InputError(path, naming_hint(list(in_file), chrom_sizes))
        self.chrom_sizes = chrom_sizes
        check_bigwig_resolution(path, self.order[0], contract.bin_size)
        # Same depth estimate as the training targets: coverage / bases per insertion, per block.
        blocks = coverage_block_counts(path, {c: chrom_sizes[c] for c in self.order}, contract.extend, BLOCK_BP)
        self.depth = measure_depth(blocks, chrom_sizes, path)

    def calibration_windows(self) -> tuple[list, list]:
        """``(spread, densest)``: ``(chrom, first bin, window bins)`` at the places given and around the highest
        bins (per 100 kb block, from the file's summaries), in model units, read from the bigWig now."""
        import pyBigWig

        from atacdenoise.denoise.quantize import PEAK_WINDOWS
        from atacdenoise.tracks.depth import BLOCK_BP

        chroms = {chrom: (n, read) for chrom, n, read in self._each(self.input_order)}  # n_bins, read
        window, size = self.contract.window_bins, self.contract.bin_size
        spread = [(chrom, start, chroms[chrom][1](start, start + window)) for chrom in self.input_order
                  for start in self._places.get(chrom, ())]
        blocks = []  # (max, chrom, first base, end) of each chromosome's ~BLOCK_BP blocks
        with pyBigWig.open(os.fspath(self.path)) as bw:
            for chrom in self.input_order:
                length = self.chrom_sizes[chrom]
                highs = bw.stats(chrom, 0, length, type="max", nBins=max(1, length // BLOCK_BP))
                blocks += [(high or 0.0, chrom, i * length // len(highs), (i + 1) * length // len(highs))
                           for i, high in enumerate(highs)]
        densest = []
        for _, chrom, first, end in sorted(blocks, key=lambda block: block[0])[-PEAK_WINDOWS:]:
            n_bins, read = chroms[chrom]
            if n_bins < window:
                continue
            top = first // size + int(np.argmax(read(first // size, -(-end // size))))
            start = int(np.clip(top - window // 2, 0, n_bins - window))
            densest.append((chrom, start, read(start, start + window)))
        return spread, densest

    def __iter__(self):
        return self._each(self.order)

    def _each(self, chroms: list[str]):
        """``(chrom, n_bins, read)``: ``read(lo, hi)`` gives bins ``[lo, hi)``, read from the bigWig then."""
        from atacdenoise.tracks.bin_grid import n_bins
        from atacdenoise.tracks.binning import bigwig_bins

        scale = np.float32(self.contract.reference_density / self.depth.density)
        bin_size = self.contract.bin_size
        for chrom in chroms:
            length = self.chrom_sizes[chrom]
            yield chrom, n_bins(length, bin_size), (
                lambda lo, hi, chrom=chrom, length=length: bigwig_bins(
                    self.path, chrom, length, bin_size, bins=(lo, hi)) * scale)


def check_bigwig_resolution(path, chrom: str, bin_size: int, max_intervals: int = 100_000) -> None:
    """A bigWig binned coarser than (or out of step with) the model's bins cannot be rebinned faithfully."""
    import pyBigWig

    with pyBigWig.open(os.fspath(path)) as bw:
        intervals = bw.intervals(chrom, 0, min(bw.chroms(chrom), max_intervals * bin_size)) or ()
        length = bw.chroms(chrom)
    if not intervals:
        return
    edges = np.array([e for start, end, _ in intervals for e in (start, end) if e != length], dtype=np.int64)
    resolution = int(np.gcd.reduce(edges)) if len(edges) else 1
    if resolution > 1 and bin_size % resolution:
        raise InputError(path, f"bigWig is binned at {resolution} bp, which cannot be rebinned to the model's "
                               f"{bin_size} bp bins")
