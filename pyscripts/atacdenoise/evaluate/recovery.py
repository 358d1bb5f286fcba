"""How many of a fragments file's Tn5 insertions the align -> filter/shift steps bring back exactly.

The check behind ``atacdenoise simulate --fragments F --fasta G``: reads made
at known molecules are aligned and filtered, and the insertions that come out
are compared with the fragments file's (``start`` and ``end - 1``).

Reads from repeats cannot be placed, and the read filter drops them on purpose
(MAPQ < 30), so the rate that matters is over fragments in uniquely mappable
sequence: both molecule ends' ``k``-mers (the first ``k`` bases each read
aligns with) occur once in the genome, counting both strands. That mask needs
every ``k``-mer of the genome at once (8 bytes each, twice): meant for small
genomes such as yeast (12 Mb: ~0.4 GB, ~10 s), not for human.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.genome import iter_sequence_bins, read_base_codes
from atacdenoise.io.reads import fragment_molecules, iter_fragments, iter_insertions


def _kmer_codes(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """2-bit packed ``k``-mers starting at every position, and where one holds an N."""
    n = len(codes) - k + 1
    if n <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, bool)
    two_bit = (codes.astype(np.int64) - 1).clip(0, 3).astype(np.uint64)
    packed = np.zeros(n, np.uint64)
    for i in range(k):
        packed = (packed << np.uint64(2)) | two_bit[i:i + n]
    has_n = np.convolve(codes == 0, np.ones(k, np.int64), "valid") > 0
    return packed, has_n


def unique_kmer_starts(fasta: str | os.PathLike, k: int = 32) -> dict[str, np.ndarray]:
    """Per chromosome: True where the ``k``-mer starting there (no N) occurs once in the genome, either strand."""
    if not 1 <= k <= 32:
        raise ValueError(f"k must be in 1..32 (one 64-bit word), got {k}")
    forward, everything = {}, []
    with tempfile.TemporaryDirectory(prefix=".kmers.") as scratch:
        for seq in iter_sequence_bins(fasta, 1 << 16, codes_dir=scratch):
            codes = np.array(read_base_codes(seq.codes_path)) if seq.length else np.zeros(0, np.uint8)
            fwd, has_n = _kmer_codes(codes, k)
            rev = _kmer_codes(np.where(codes > 0, 5 - codes, 0)[::-1].astype(np.uint8), k)[0][::-1]
            forward[seq.chrom] = (fwd, has_n)
            everything += [fwd[~has_n], rev[~has_n]]
    values, counts = np.unique(np.concatenate(everything), return_counts=True)
    del everything
    out = {}
    for chrom, (fwd, has_n) in forward.items():
        order = np.argsort(fwd, kind="stable")  # sorted queries: searchsorted walks the table once
        at = np.empty(len(fwd), np.int64)
        at[order] = np.clip(np.searchsorted(values, fwd[order]), 0, len(values) - 1)
        out[chrom] = (values[at] == fwd) & (counts[at] == 1) & ~has_n
    return out


@dataclass
class Recovery:
    fragments: int               # distinct fragments (chrom, start, end) on the chromosomes compared
    fragments_recovered: int     # both insertions came back at exactly start and end - 1
    mappable: int                # of those, in uniquely mappable sequence (see the module doc)
    mappable_recovered: int
    insertions_expected: int     # 2 per distinct fragment
    insertions_observed: int     # what the filter/shift step wrote on those chromosomes
    insertions_matched: int      # observed at an expected position (multiset intersection)
    k: int

    @property
    def mappable_rate(self) -> float:
        return self.mappable_recovered / self.mappable if self.mappable else float("nan")

    @property
    def fragment_rate(self) -> float:
        return self.fragments_recovered / self.fragments if self.fragments else float("nan")

    @property
    def insertion_rate(self) -> float:
        return self.insertions_matched / self.insertions_expected if self.insertions_expected else float("nan")

    @property
    def misplaced(self) -> int:
        """Observed insertions at no expected position."""
        return self.insertions_observed - self.insertions_matched

    def as_dict(self) -> dict:
        return {**asdict(self), "mappable_rate": self.mappable_rate, "fragment_rate": self.fragment_rate,
                "insertion_rate": self.insertion_rate, "misplaced": self.misplaced}


def insertion_recovery(truth_fragments: str | os.PathLike, insertions: str | os.PathLike,
                       chrom_sizes: str | os.PathLike | dict, fasta: str | os.PathLike | None = None,
                       exclude_chroms: tuple[str, ...] = ("chrM", "MT", "M"), k: int = 32) -> Recovery:
    """Compare the insertions ``insertions`` holds with the fragments of ``truth_fragments``.

    Duplicate fragments (same chrom, start, end) count once: the read filter keeps
    one of them. ``fasta`` adds the uniquely mappable subset (else it is all fragments).
    """
    sizes = chrom_sizes if isinstance(chrom_sizes, dict) else read_chrom_sizes(chrom_sizes)
    sizes = {c: n for c, n in sizes.items() if c not in exclude_chroms}
    observed = dict(iter_insertions(insertions, sizes, fmt="insertions"))
    unique = unique_kmer_starts(fasta, k) if fasta is not None else None
    r = Recovery(0, 0, 0, 0, 0, 0, 0, k)
    for chrom, starts, ends, _ in iter_fragments(truth_fragments, sizes):
        starts, ends = np.unique(np.stack([starts, ends]), axis=1)
        seen = observed.get(chrom, np.zeros(0, np.int64))
        ok = np.isin(starts, seen) & np.isin(ends - 1, seen)
        if unique is not None:
            mol_start, mol_end = fragment_molecules(starts, ends)
            mask = unique[chrom]
            last = len(mask) - 1
            mappable = ((mol_end - mol_start >= k) & (mol_start >= 0) & (mol_end - k <= last)
                        & mask[np.clip(mol_start, 0, last)] & mask[np.clip(mol_end - k, 0, last)])
        else:
            mappable = np.ones(len(starts), bool)
        expected = np.concatenate([starts, ends - 1])
        values, want = np.unique(expected, return_counts=True)
        got_values, got = np.unique(seen, return_counts=True)
        at = np.clip(np.searchsorted(got_values, values), 0, max(len(got_values) - 1, 0))
        have = np.where((got_values[at] == values) if len(got_values) else False, got[at] if len(got) else 0, 0)
        r.fragments += len(starts)
        r.fragments_recovered += int(ok.sum())
        r.mappable += int(mappable.sum())
        r.mappable_recovered += int((ok & mappable).sum())
        r.insertions_expected += len(expected)
        r.insertions_observed += len(seen)
        r.insertions_matched += int(np.minimum(want, have).sum())
    return r
