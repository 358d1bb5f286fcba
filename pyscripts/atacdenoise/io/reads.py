"""Tn5 insertions from any supported input, one chromosome at a time.

Every input format is reduced to the same thing: for each chromosome, a sorted
``int64`` array of 0-based insertion positions. Everything downstream
(subsampling of insertions, binning, peak calling) consumes that stream, so
memory is bounded by the largest chromosome, never by the genome.

Conventions (documented once, here):
- BAM: a read's insertion is its 5' end shifted ``shift_plus`` (+4) on the plus
  strand: ``reference_start + 4``; and ``shift_minus`` (-5) on the minus
  strand: ``reference_end - 1 - 5``. With shifts 0/0 this is exactly the read's
  5' base (what deepTools ``--Offset 1`` counts).
- insertions BED: BED6, one line per 1-bp insertion, position = start.
- fragments (chrom, start, end, barcode, count): insertions at ``start`` and
  ``end - 1``, each repeated ``count`` times (fragments are already shifted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

FORMATS = ("bam", "insertions", "fragments", "bigwig")


@dataclass
class ReadFilter:
    """Which BAM records give insertions. Defaults follow ENCODE/nf-core ATAC practice."""

    min_mapq: int = 30
    exclude_chroms: tuple[str, ...] = ("chrM", "MT", "M")
    keep_duplicates: bool = False
    keep_improper_pairs: bool = False
    keep_secondary: bool = False
    keep_supplementary: bool = False
    keep_qcfail: bool = False
    shift_plus: int = 4
    shift_minus: int = -5


@dataclass
class FilterCounts:
    """Why records were dropped; filled while streaming, reported by the CLI."""

    kept: int = 0
    unmapped: int = 0
    low_mapq: int = 0
    duplicate: int = 0
    secondary: int = 0
    supplementary: int = 0
    qcfail: int = 0
    improper_pair: int = 0
    excluded_chrom: int = 0          # chrM and friends
    not_in_chrom_sizes: int = 0
    per_chrom: dict[str, int] = field(default_factory=dict)


def detect_format(path: str | os.PathLike) -> str:
    """Guess one of :data:`FORMATS` from the name and magic bytes."""
    raise NotImplementedError


def iter_insertions(
    path: str | os.PathLike,
    chrom_sizes: dict[str, int],
    fmt: str = "auto",
    read_filter: ReadFilter | None = None,
    counts: FilterCounts | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(chrom, sorted int64 positions)`` once per chromosome.

    BAM is read through its index in chrom-sizes order; text formats stream in
    file order and must be grouped by chromosome (a chromosome that comes back
    after another one is an InputError: "not sorted by chromosome").

    Chromosomes absent from ``chrom_sizes`` are dropped (counted); if the input
    shares no chromosome with ``chrom_sizes`` an InputError explains the naming
    mismatch (``1`` vs ``chr1``). Positions outside ``[0, length)`` are clipped away.
    """
    raise NotImplementedError


def write_insertions_bed(path: str | os.PathLike, chrom_positions: Iterator[tuple[str, np.ndarray]]) -> int:
    """Write BED6 (gzip when the name ends in .gz), atomically; return the number of lines."""
    raise NotImplementedError
