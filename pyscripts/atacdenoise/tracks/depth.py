"""How deep a library is, measured so that a 10 Mb slice and a whole genome agree.

Model inputs and training targets are coverage rescaled to a *reference
density*: ``coverage * REFERENCE_DENSITY / density``, where ``density`` is the
library's insertions per base of nuclear sequence. A chromosome denoised on its
own and the same chromosome inside a genome-wide library of the same local
depth therefore get the same input. (Counts per million insertions of the file,
used before, made one insertion of a 10 Mb training slice worth ~300 times one
of a genome-wide sample of the same depth; see issue 19.)

Measured density = insertions / bases over the nuclear chromosomes that have
insertions, leaving out

- mitochondrial chromosomes (chrM, MT): 1-60 % of an ATAC library depending on
  the prep, unrelated to nuclear accessibility;
- pile-ups: 100 kb blocks holding more than ``PILEUP_FOLD`` times the median
  non-empty block (the yeast rDNA array holds 37 % of that library in one
  block at 62x the median; unfiltered satellite repeats look the same). Real
  accessibility never comes close: the densest HSC block is 6x the median.

A user who denoises a slice of a bigger library gives that library's size
instead (``denoise --library-size N``): density = N / nuclear length of the
chrom sizes (the whole genome), nothing measured.

``REFERENCE_DENSITY`` (1 insertion per 20 bp) is a unit, like "per million":
it sits near the deep training libraries (80M HSC ~28 per kb, yeast ~50 per
kb) and keeps the HSC training arrays exactly as they were (their files cover
20 Mb), so models trained on them carry over unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from atacdenoise.errors import InputError

REFERENCE_DENSITY = 0.05  # insertions per base: the model's unit of depth
BLOCK_BP = 100_000
PILEUP_FOLD = 20
MITOCHONDRIAL = frozenset({"chrM", "chrMT", "MT", "M", "Mito", "chrMito"})


def is_mitochondrial(chrom: str) -> bool:
    return chrom in MITOCHONDRIAL


@dataclass(frozen=True)
class LibraryDepth:
    """Insertions counted over ``sequence_bp`` bases; ``scale`` turns coverage into model units."""

    insertions: float
    sequence_bp: int
    how: str  # "measured" or "given"
    mitochondrial: float = 0.0  # insertions left out
    pileups: float = 0.0
    pileup_blocks: tuple[str, ...] = ()  # "chrom:start-end" of each left-out block

    @property
    def density(self) -> float:
        return self.insertions / self.sequence_bp

    @property
    def scale(self) -> float:
        return REFERENCE_DENSITY / self.density

    def to_dict(self) -> dict:
        return {**asdict(self), "pileup_blocks": list(self.pileup_blocks), "density_per_kb": self.density * 1000,
                "reference_density_per_kb": REFERENCE_DENSITY * 1000, "scale": self.scale}

    def describe(self) -> str:
        left_out = [f"{what} {n:,.0f}" for what, n in (("mitochondrial", self.mitochondrial),
                                                       ("pile-ups", self.pileups)) if n]
        note = f" ({', '.join(left_out)} left out)" if left_out else ""
        return (f"library {self.how}: {self.insertions:,.0f} insertions over {self.sequence_bp / 1e6:,.1f} Mb "
                f"of nuclear sequence = {self.density * 1000:.3g} per kb{note}")


def block_counts(positions: np.ndarray, length: int) -> np.ndarray:
    """Insertions per ``BLOCK_BP`` block of one chromosome (the last block may be short)."""
    n_blocks = -(-length // BLOCK_BP)
    return np.bincount(np.asarray(positions, np.int64) // BLOCK_BP, minlength=n_blocks)[:n_blocks].astype(np.float64)


def measure_depth(blocks: Iterable[tuple[str, np.ndarray]], chrom_sizes: dict[str, int], source=None) -> LibraryDepth:
    """Density from per-chromosome block counts (:func:`block_counts`); chromosomes with none are not covered."""
    mitochondrial, counts, lengths, names = 0.0, [], [], []
    for chrom, chrom_blocks in blocks:
        total = float(chrom_blocks.sum())
        if total == 0:
            continue
        if is_mitochondrial(chrom):
            mitochondrial += total
            continue
        starts = np.arange(len(chrom_blocks)) * BLOCK_BP
        counts.append(chrom_blocks)
        lengths.append(np.minimum(starts + BLOCK_BP, chrom_sizes[chrom]) - starts)
        names.extend(f"{chrom}:{s}-{min(s + BLOCK_BP, chrom_sizes[chrom])}" for s in starts)
    if not counts:
        raise InputError(source, "no insertions on nuclear chromosomes: cannot measure the library's depth")
    counts, lengths = np.concatenate(counts), np.concatenate(lengths)
    pileup = counts / lengths > PILEUP_FOLD * np.median(counts[counts > 0] / lengths[counts > 0])
    return LibraryDepth(insertions=float(counts[~pileup].sum()), sequence_bp=int(lengths[~pileup].sum()),
                        how="measured", mitochondrial=mitochondrial, pileups=float(counts[pileup].sum()),
                        pileup_blocks=tuple(np.asarray(names)[pileup]))


def given_depth(insertions: float, chrom_sizes: dict[str, int]) -> LibraryDepth:
    """A library size the user knows (``--library-size``), spread over the whole nuclear genome of the chrom sizes."""
    if not insertions > 0:
        raise InputError(None, f"library size must be a positive number of insertions, got {insertions}")
    nuclear = sum(length for chrom, length in chrom_sizes.items() if not is_mitochondrial(chrom))
    return LibraryDepth(insertions=float(insertions), sequence_bp=int(nuclear), how="given")
