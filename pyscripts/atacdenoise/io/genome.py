"""What the genome says, read from the files users already have: the reference FASTA and annotation.

- FASTA (plain, gzip or bgzip: all are read as a stream, so a plain-gzip
  reference in a read-only folder works and no index is needed) is reduced, in
  one pass and one bounded chunk at a time, to per-bin base counts and to the
  MD5 of every chromosome's sequence as SAM's ``M5`` tag defines it
  (upper case, no whitespace). Memory: one chromosome's bins, never its bases.
- Annotation: BED (3+ columns; BED6 strand used for ``tss``), GTF or GFF3
  (``gene`` records: their start on ``+``, their end on ``-`` is the TSS),
  bigWig (user tracks). Rows on chromosomes outside the chrom sizes are
  ignored; a file sharing none of them, or with a row beyond a chromosome's end
  (another genome), is an :class:`InputError`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from atacdenoise.errors import InputError
from atacdenoise.io.chromsizes import naming_hint
from atacdenoise.io.reads import READ_ERRORS, GZIP_MAGIC, is_header, open_text

CHUNK_BASES = 1 << 20  # bases handed to numpy at a time

# Per-bin base counts read from the FASTA, in this order.
BASE_COUNTS = ("gc", "at", "n", "cpg")
# Per-base codes (the per-bin counts and the learned sequence tower both read them): 0 = N, other IUPAC code
# or off the chromosome; A, C, G, T = 1..4 (so 5 - code is the complement, and zero padding reads as N).
BASE_CODE = np.zeros(256, np.uint8)
for _i, _b in enumerate(b"ACGT", start=1):
    BASE_CODE[_b] = BASE_CODE[ord(chr(_b).lower())] = _i
A, C, G, T = 1, 2, 3, 4
NO_BASE = 255  # pads a chunk's last bin past its end: counted as no base at all


@dataclass
class SequenceBins:
    """One chromosome of a FASTA: per-bin counts (``BASE_COUNTS`` x bins) and the sequence's M5 digest."""

    chrom: str
    length: int
    counts: np.ndarray  # int32 (4, n_bins): G/C, A/T, N (and other codes), CpG dinucleotides starting in the bin
    md5: str
    codes_path: Path | None = None  # raw uint8 BASE_CODE per base, when asked for


def read_base_codes(path: str | os.PathLike) -> np.ndarray:
    """The per-base codes :func:`iter_sequence_bins` wrote, memory-mapped (never read whole)."""
    return np.memmap(path, dtype=np.uint8, mode="r")


def iter_sequence_bins(fasta: str | os.PathLike, bin_size: int,
                       codes_dir: str | os.PathLike | None = None) -> Iterator[SequenceBins]:
    """Stream ``fasta`` and yield every chromosome's :class:`SequenceBins` in file order.

    With ``codes_dir``, every chromosome's per-base :data:`BASE_CODE` are also
    written there (``<n>.codes``, raw uint8, one chunk at a time).
    """
    path = Path(fasta)
    if not path.is_file():
        raise InputError(path, "FASTA file does not exist")
    with open(path, "rb") as probe:
        head = probe.read(2)
    opener = gzip.open if head == GZIP_MAGIC else open
    reader = _ChromReader(bin_size, None if codes_dir is None else Path(codes_dir))
    try:
        with opener(path, "rb") as fh:
            for line in fh:
                if line.startswith(b">"):
                    if reader.chrom is not None:
                        yield reader.finish()
                    name = line[1:].split(None, 1)
                    if not name:
                        raise InputError(path, "a FASTA header has no sequence name")
                    reader.start(name[0].decode())
                elif reader.chrom is None:
                    if line.strip():
                        raise InputError(path, "not a FASTA file: sequence before the first '>' header")
                else:
                    reader.add(line.strip())
    except READ_ERRORS as err:
        raise InputError(path, f"cannot read as FASTA ({type(err).__name__}: {err})") from None
    if reader.chrom is None:
        raise InputError(path, "not a FASTA file: no '>' header")
    yield reader.finish()


class _ChromReader:
    """Accumulates one chromosome's per-bin counts and MD5 from sequence lines."""

    def __init__(self, bin_size: int, codes_dir: Path | None = None):
        self.bin_size, self.chrom, self.codes_dir, self.n_chroms = bin_size, None, codes_dir, 0
        self.codes_out = self.codes_path = None

    def start(self, chrom: str) -> None:
        self.chrom, self.length, self.md5 = chrom, 0, hashlib.md5()
        if self.codes_dir is not None:
            self.n_chroms += 1
            self.codes_path = self.codes_dir / f"{self.n_chroms}.codes"
            self.codes_out = open(self.codes_path, "wb")
        self.pending = bytearray()
        self.pieces: list[np.ndarray] = []

    def add(self, line: bytes) -> None:
        self.pending += line
        if len(self.pending) >= CHUNK_BASES:
            whole = len(self.pending) // self.bin_size * self.bin_size
            self._count(bytes(self.pending[:whole]), self.pending[whole:whole + 1])
            del self.pending[:whole]

    def _count(self, seq: bytes, next_base: bytes) -> None:
        """One bin-aligned chunk; ``next_base`` (the chunk's successor, if any) completes a CpG at its end."""
        self.md5.update(seq.upper())
        self.length += len(seq)
        codes = BASE_CODE[np.frombuffer(seq + next_base, np.uint8)]
        if self.codes_out is not None:
            self.codes_out.write(codes[:len(seq)].tobytes())
        n_bins = -(-len(seq) // self.bin_size)
        padded = np.full(n_bins * self.bin_size, NO_BASE, np.uint8)
        padded[:len(seq)] = codes[:len(seq)]
        per_bin = padded.reshape(n_bins, self.bin_size)
        gc = ((per_bin == G) | (per_bin == C)).sum(axis=1)
        at = ((per_bin == A) | (per_bin == T)).sum(axis=1)
        cpg = np.flatnonzero((codes[:-1] == C) & (codes[1:] == G))  # starts inside the chunk only
        cpg_counts = np.bincount(cpg // self.bin_size, minlength=n_bins)
        self.pieces.append(np.stack([gc, at, (per_bin == 0).sum(axis=1), cpg_counts]).astype(np.int32))

    def finish(self) -> SequenceBins:
        if self.pending or not self.pieces:
            self._count(bytes(self.pending), b"")
        counts = np.concatenate(self.pieces, axis=1) if self.pieces else np.zeros((4, 0), np.int32)
        done = SequenceBins(self.chrom, self.length, counts, self.md5.hexdigest(), self.codes_path)
        if self.codes_out is not None:
            self.codes_out.close()
        self.chrom = None
        return done


def check_fasta_chroms(fasta, found: list[str], wanted: list[str], chrom_sizes: dict[str, int]) -> None:
    """Every chromosome of the input must be in the FASTA; say how names differ when none is."""
    missing = [c for c in wanted if c not in found]
    if not missing:
        return
    if not set(found) & set(wanted):
        raise InputError(fasta, naming_hint(found, {c: chrom_sizes[c] for c in wanted}).replace("input", "FASTA", 1))
    raise InputError(fasta, f"FASTA lacks chromosome {missing[0]} of the input"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))


# ---------------------------------------------------------------- annotation

@dataclass
class Intervals:
    """Sorted 0-based half-open intervals of one chromosome (``strand``: +1, -1 or 0)."""

    starts: np.ndarray
    ends: np.ndarray
    strands: np.ndarray


ANNOTATION_FORMATS = ("bed", "gtf", "gff3", "bigwig")


def detect_annotation_format(path: str | os.PathLike) -> str:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "annotation file does not exist")
    from atacdenoise.io.reads import BIGWIG_MAGIC

    with open(path, "rb") as fh:
        if fh.read(4) == BIGWIG_MAGIC:
            return "bigwig"
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".gff3", ".gff")):
        return "gff3"
    if name.endswith(".gtf"):
        return "gtf"
    return "bed"


def read_intervals(path: str | os.PathLike, chrom_sizes: dict[str, int], fmt: str = "auto",
                   genes_only: bool = False) -> dict[str, Intervals]:
    """Intervals of a BED, GTF or GFF3 file on the chromosomes of ``chrom_sizes``.

    GTF/GFF3 give their ``gene`` records (1-based closed -> 0-based half-open);
    ``genes_only`` makes a GTF/GFF3 without any an error. Rows elsewhere than
    ``chrom_sizes`` are skipped; none left, or a row past a chromosome end, is
    an InputError naming the file.
    """
    path = Path(path)
    fmt = detect_annotation_format(path) if fmt == "auto" else fmt
    if fmt == "bigwig":
        raise InputError(path, "a bigWig holds values, not intervals: use it as a user track")
    rows: dict[str, list[tuple[int, int, int]]] = {}
    seen_chroms, n_rows = set(), 0
    try:
        with open_text(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                if is_header(line):
                    continue
                row = _parse_row(path, line_no, line, fmt)
                if row is None:
                    continue
                n_rows += 1
                chrom, start, end, strand = row
                seen_chroms.add(chrom)
                if chrom not in chrom_sizes:
                    continue
                if end > chrom_sizes[chrom]:
                    raise InputError(path, f"line {line_no}: {chrom}:{start + 1}-{end} ends beyond {chrom}'s "
                                           f"{chrom_sizes[chrom]:,} bp (annotation of another genome?)")
                rows.setdefault(chrom, []).append((start, end, strand))
    except READ_ERRORS as err:
        raise InputError(path, f"cannot read as {fmt.upper()} ({type(err).__name__}: {err})") from None
    if fmt in ("gtf", "gff3") and genes_only and n_rows == 0:
        raise InputError(path, f"{fmt.upper()} has no 'gene' records (column 3): cannot place gene starts")
    if n_rows and not rows:
        raise InputError(path, naming_hint(seen_chroms, chrom_sizes).replace("input", "annotation", 1))
    out = {}
    for chrom, chrom_rows in rows.items():
        arr = np.array(sorted(chrom_rows), dtype=np.int64).reshape(-1, 3)
        out[chrom] = Intervals(arr[:, 0], arr[:, 1], arr[:, 2])
    return out


def _parse_row(path, line_no: int, line: str, fmt: str):
    fields = line.rstrip("\n").split("\t") if fmt in ("gtf", "gff3") else line.split()
    try:
        if fmt in ("gtf", "gff3"):
            if len(fields) < 8:
                raise ValueError(f"expected 9 tab-separated {fmt.upper()} columns")
            if fields[2] != "gene":
                return None
            start, end = int(fields[3]) - 1, int(fields[4])
            strand = fields[6]
        else:
            if len(fields) < 3:
                raise ValueError("expected at least 3 columns (chrom, start, end)")
            start, end = int(fields[1]), int(fields[2])
            strand = fields[5] if len(fields) >= 6 else "."
    except ValueError as err:
        raise InputError(path, f"line {line_no}: {err}") from None
    if start < 0 or end < start:
        raise InputError(path, f"line {line_no}: bad interval {start}-{end}")
    return fields[0], start, end, {"+": 1, "-": -1}.get(strand, 0)


def tss_positions(intervals: Intervals) -> np.ndarray:
    """Sorted transcription start bases: an interval's first base, or its last on the minus strand."""
    return np.sort(np.where(intervals.strands < 0, intervals.ends - 1, intervals.starts))
