"""Insertions back from an extended-coverage track (the inverse of ``coverage_bins(bin_size=1, stat="sum")``).

Some deep libraries are published only as coverage: every insertion extended to
``+-extend`` bp and summed (AtacWorks packages its HSC data that way). To thin
such a library to any depth, as the seed thins its deep BAM, its insertions are
needed. They can be recovered exactly: with ``n[y]`` insertions at ``y``,

    c[x] = sum(n[x - extend .. x + extend])   so   c[x + 1] - c[x] = n[x + 1 + extend] - n[x - extend],

which fixes ``n`` along every residue class modulo ``2 * extend + 1`` up to one
constant per class. Counts are non-negative and sparse (most bases have none),
so each constant is the one that brings its class's minimum to zero. The result
is verified by recomputing the coverage, which must match to the base; if not,
the track was not built this way and we say so instead of guessing.

Where a track is defined only in some regions (zero elsewhere, e.g. AtacWorks'
labelled tiles), each region is recovered on its own: the coverage just outside
a region is unknown, not zero.
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.narrowpeak import Peaks


def counts_from_coverage(coverage: np.ndarray, extend: int) -> np.ndarray:
    """Insertion counts for positions ``[-extend, len(coverage) + extend)`` of a coverage segment.

    Raises ValueError when no non-negative integer counts reproduce ``coverage``.
    """
    coverage = np.asarray(coverage)
    if not np.array_equal(coverage, np.round(coverage)):
        raise ValueError("coverage is not whole numbers, so it is not a sum of extended insertions")
    coverage = coverage.astype(np.int64)
    width = 2 * extend + 1
    n = len(coverage) + 2 * extend
    # increments[k] = n[k] - n[k - width] for local index k = x + 1 + 2 * extend (x + 1 indexes the coverage)
    increments = np.zeros(-(-n // width) * width, np.int64)
    increments[2 * extend + 1 : 2 * extend + len(coverage)] = np.diff(coverage)
    by_class = np.cumsum(increments.reshape(-1, width), axis=0)
    by_class -= by_class.min(axis=0)  # lowest count of each residue class is zero
    counts = by_class.ravel()[:n]
    if not np.array_equal(coverage_from_counts(counts, extend), coverage):
        raise ValueError("no non-negative insertion counts reproduce this coverage "
                         f"(not +-{extend} bp extended insertions, or clipped values)")
    return counts


def coverage_from_counts(counts: np.ndarray, extend: int) -> np.ndarray:
    """Coverage of the inner ``len(counts) - 2 * extend`` bases: each a sum of ``2 * extend + 1`` counts."""
    running = np.concatenate([[0], np.cumsum(counts)])
    width = 2 * extend + 1
    return running[width:] - running[:-width]


def insertions_from_coverage(path: str | os.PathLike, chrom_sizes: dict[str, int],
                             regions: dict[str, Peaks] | None = None,
                             extend: int = 100) -> Iterator[tuple[str, np.ndarray]]:
    """``(chrom, sorted insertion positions)`` recovered from a coverage bigWig (a path or an open
    ``BigWigReader``), chromosome by chromosome.

    ``regions`` (e.g. a labelled-regions BED) limits recovery to where the track
    is defined; without it each chromosome is one segment.
    """
    from atacdenoise.io.bigwig import bigwig_reader

    with bigwig_reader(path) as bw:
        yield from _recovered(bw, chrom_sizes, regions, extend)


def _recovered(bw, chrom_sizes, regions, extend):
    for chrom, length in chrom_sizes.items():
        if chrom not in bw.chrom_sizes:
            continue
        coverage = bw.values(chrom)[:length]
        segments = ([(0, length)] if regions is None else
                    [(int(a), int(b)) for a, b in zip(*_region_arrays(regions, chrom)) if b > a])
        pieces, covered_to = [], 0
        for start, end in segments:
            try:
                counts = counts_from_coverage(coverage[start:end], extend)
            except ValueError as err:
                raise InputError(bw.path, f"{chrom}:{start}-{end}: {err}") from None
            positions = np.repeat(np.arange(start - extend, end + extend), counts)
            # Keep inside the chromosome, and never count twice where two regions' margins meet.
            positions = positions[(positions >= max(covered_to, 0)) & (positions < length)]
            covered_to = end + extend
            pieces.append(positions)
        yield chrom, (np.concatenate(pieces) if pieces else np.zeros(0, np.int64))


def _region_arrays(regions: dict[str, Peaks], chrom: str) -> tuple[np.ndarray, np.ndarray]:
    on_chrom = regions.get(chrom)
    if on_chrom is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(on_chrom.starts, kind="stable")
    return on_chrom.starts[order], on_chrom.ends[order]
