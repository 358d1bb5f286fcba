"""Tn5 insertions from any supported input, one chromosome at a time.

Every input format is reduced to the same thing: for each chromosome, a sorted
``int64`` array of 0-based insertion positions. Everything downstream
(subsampling of insertions, binning, peak calling) consumes that stream, so
memory is bounded by the largest chromosome, never by the genome.

Conventions (documented once, here):
- BAM: a read's insertion is its 5' end shifted ``shift_plus`` (+4) on the plus
  strand: ``reference_start + 4``; and ``shift_minus`` (-5) on the minus
  strand: ``reference_end - 1 - 5``. With shifts 0/0 this is exactly the read's
  5' base (what deepTools ``--Offset 1`` counts). Each read (each mate of a
  pair) gives one insertion.
- insertions BED: BED6, one line per 1-bp insertion, position = start.
- fragments (chrom, start, end, barcode, count): insertions at ``start`` and
  ``end - 1``, each repeated ``count`` times (fragments are already shifted).
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pysam

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path
from atacdenoise.io.chromsizes import check_shared_chroms

log = logging.getLogger(__name__)

FORMATS = ("bam", "insertions", "fragments", "bigwig")

GZIP_MAGIC = b"\x1f\x8b"
BIGWIG_MAGIC = (0x888FFC26).to_bytes(4, "little")
# Every complete BGZF file (BAM, bgzipped text) ends with this empty block.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
# A fragments line's duplicate count (column 5) above this is an error, not a fragment seen 1e9 times (which
# would ask for gigabytes); real libraries' counts stay in the hundreds.
MAX_FRAGMENT_COUNT = 100_000
# What reading a damaged text file raises: a bad gzip stream mid-file is zlib.error, which is no OSError.
READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, zlib.error)

# SAM flag bits (see the SAM specification, section 1.4).
PAIRED, PROPER_PAIR, UNMAPPED, REVERSE = 0x1, 0x2, 0x4, 0x10
SECONDARY, QCFAIL, DUPLICATE, SUPPLEMENTARY = 0x100, 0x200, 0x400, 0x800


@dataclass
class ReadFilter:
    """Which BAM records give insertions. Defaults follow ENCODE/nf-core ATAC practice.

    ``strict``: in insertions BED and fragments files, a coordinate outside its chromosome
    (negative, or past the end) is an error naming its line instead of being dropped and counted.
    """

    min_mapq: int = 30
    exclude_chroms: tuple[str, ...] = ("chrM", "MT", "M")
    keep_duplicates: bool = False
    keep_improper_pairs: bool = False
    keep_secondary: bool = False
    keep_supplementary: bool = False
    keep_qcfail: bool = False
    shift_plus: int = 4
    shift_minus: int = -5
    strict: bool = False


def fragment_molecules(starts: np.ndarray, ends: np.ndarray, rf: ReadFilter = ReadFilter()):
    """The sequenced molecules ``[start, end)`` of a fragments file's fragments: a fragments file (10x style)
    holds them Tn5-shifted the read filter's way (its insertions at ``start`` and ``end - 1``), so undo it."""
    return starts - rf.shift_plus, ends - rf.shift_minus


@dataclass
class FilterCounts:
    """Why records were dropped; filled while streaming, reported by the CLI.

    Each record is counted once, under its first reason in this order:
    unmapped, excluded_chrom, not_in_chrom_sizes, secondary, supplementary,
    qcfail, duplicate, improper_pair, low_mapq, then outside_chrom (an insertion
    at a negative position or beyond its chromosome's end). For text inputs
    ``kept`` counts insertions and ``not_in_chrom_sizes`` counts lines.
    """

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
    outside_chrom: int = 0           # insertions at a negative position or beyond the chromosome's end
    per_chrom: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- format detection

def detect_format(path: str | os.PathLike) -> str:
    """Guess one of :data:`FORMATS` from the name and magic bytes."""
    path = _existing_nonempty(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == BIGWIG_MAGIC:
        return "bigwig"
    if head[:2] == GZIP_MAGIC and _gunzip_head(path, 4) == b"BAM\x01":
        return "bam"
    name = path.name.lower()
    if name.endswith(".bam"):
        return "bam"  # not BGZF-with-BAM-magic: iter_insertions reports what is wrong
    if name.endswith((".bw", ".bigwig")):
        raise InputError(path, "named like a bigWig but lacks the bigWig magic number (not a bigWig file)")
    text_name = name[:-3] if name.endswith(".gz") else name
    if text_name.endswith(".tsv") or "fragments" in text_name:
        fields = _first_data_fields(path)
        if _looks_like_fragments(fields):
            return "fragments"
        if text_name.endswith(".tsv"):
            raise InputError(path, "expected a fragments file (chrom, start, end, barcode[, count]); "
                                   f"first data line has {fields!r}")
    if text_name.endswith(".bed"):
        return "insertions"
    raise InputError(path, "unknown input format: expected BAM (.bam), insertions BED (.bed[.gz]), "
                           "fragments (.tsv[.gz]) or bigWig (.bw); pass --format to force one")


def _existing_nonempty(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file does not exist")
    if path.is_dir():
        raise InputError(path, "is a folder, expected a file")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty")
    return path


def _gunzip_head(path: Path, n: int) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error):
        return b""


def open_text(path, mode: str = "rt", gzipped: bool | None = None):
    """A plain or gzip/bgzip text file: reading decides by content, writing by a ``.gz`` name (or ``gzipped``).

    Written gzip is BGZF (level 1), which every gzip reader reads and tabix can index.
    """
    path = Path(path)
    if "r" in mode:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == GZIP_MAGIC
        return gzip.open(path, mode) if gzipped else open(path, mode)
    if gzipped or (gzipped is None and path.name.endswith(".gz")):
        return io.TextIOWrapper(pysam.BGZFile(str(path), "wb1"))
    return open(path, mode)


def is_header(line: str) -> bool:
    """Blank, comment, or UCSC track/browser line: no record in a BED-like file."""
    return not line.strip() or line.startswith(("#", "track", "browser"))


def _first_data_fields(path: Path) -> list[str]:
    try:
        with open_text(path) as fh:
            for line in fh:
                if not is_header(line):
                    return line.split()
    except READ_ERRORS as err:
        raise InputError(path, f"cannot read as text ({err})") from None
    return []


def _looks_like_fragments(fields: list[str]) -> bool:
    # A barcode in column 4 tells fragments apart from BED6 insertions (name '.'/'N', then score, strand).
    return (len(fields) >= 4 and fields[1].isdigit() and fields[2].isdigit()
            and len(fields) <= 5 and fields[3] not in (".", "N"))


# ---------------------------------------------------------------- the one entry point

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
    Only chromosomes the input knows are yielded (a BAM's header contigs, a text
    file's chromosomes); consumers treat absent chromosomes as empty.
    """
    path = _existing_nonempty(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    counts = counts if counts is not None else FilterCounts()
    if fmt == "bam":
        return _bam_insertions(path, chrom_sizes, read_filter or ReadFilter(), counts)
    if fmt in ("insertions", "fragments"):
        return _text_insertions(path, chrom_sizes, fmt == "fragments", counts, (read_filter or ReadFilter()).strict)
    if fmt == "bigwig":
        raise InputError(path, "a bigWig holds a coverage track, not insertions; bigWig inputs are only "
                               "accepted where a track is needed (bin, denoise)")
    raise InputError(path, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _keep_in_chrom(positions: np.ndarray, length: int, counts: FilterCounts | None = None) -> np.ndarray:
    inside = (positions >= 0) & (positions < length)
    if counts is not None:
        counts.outside_chrom += int(len(positions) - np.count_nonzero(inside))
    positions = positions[inside]
    positions.sort(kind="stable")
    return positions


# ---------------------------------------------------------------- BAM

def bam_chrom_sizes(path: str | os.PathLike) -> dict[str, int]:
    """The contigs and lengths in a BAM header, with the same checks as reading it (empty, truncated)."""
    path = _existing_nonempty(path)
    _check_bgzf_complete(path)
    with _open_bam(path) as bam:
        return dict(zip(bam.references, bam.lengths))


def _bam_insertions(path: Path, chrom_sizes: dict[str, int], rf: ReadFilter,
                    counts: FilterCounts) -> Iterator[tuple[str, np.ndarray]]:
    # Checks run eagerly (this is not a generator) so bad input fails before any output is opened.
    bam = open_checked_bam(path)
    try:
        check_shared_chroms(path, bam.references, chrom_sizes)
        _count_skipped_contigs(bam, chrom_sizes, rf, counts)
    except BaseException:
        bam.close()
        raise
    return _bam_chroms(path, bam, chrom_sizes, rf, counts)


def _bam_chroms(path, bam, chrom_sizes, rf, counts):
    previous_verbosity = pysam.set_verbosity(0)  # htslib's own lines would bury our one-line error
    try:
        for chrom, length in chrom_sizes.items():
            if chrom in rf.exclude_chroms or chrom not in bam.references:
                continue
            positions = _chrom_insertions(path, bam, chrom, rf, counts)
            outside_before = counts.outside_chrom
            positions = _keep_in_chrom(positions, length, counts)
            counts.kept -= counts.outside_chrom - outside_before  # counted once: as outside, not as kept
            counts.per_chrom[chrom] = len(positions)
            yield chrom, positions
    finally:
        close_quietly(bam)
        pysam.set_verbosity(previous_verbosity)


def close_quietly(handle) -> None:
    """Close a pysam file after a read error: htslib then fails to close too (``Closing failed: Success``),
    and that second error must not replace the first, which says what is wrong."""
    try:
        handle.close()
    except OSError:
        pass


def _index_is_stale(path: Path) -> bool:
    """True when the whole file reads fine from start to end: then the read error came from its index."""
    try:
        bam = pysam.AlignmentFile(str(path), "rb", check_sq=False)
    except (ValueError, OSError):
        return False
    try:
        for _ in bam.fetch(until_eof=True):
            pass
        return True
    except OSError:
        return False
    finally:
        close_quietly(bam)


def _check_bgzf_complete(path: Path) -> None:
    with open(path, "rb") as fh:
        if fh.read(2) != GZIP_MAGIC:
            raise InputError(path, "not a BAM file (not BGZF-compressed)")
        fh.seek(max(path.stat().st_size - len(BGZF_EOF), 0))
        if fh.read() != BGZF_EOF:
            raise InputError(path, "truncated BGZF (file is incomplete)")


def open_checked_bam(path: Path):
    """An open pysam BAM after the checks every reader makes: complete BGZF, coordinate-sorted (indexed here if not yet)."""
    _check_bgzf_complete(path)
    bam = _open_bam(path)
    sort_order = bam.header.to_dict().get("HD", {}).get("SO", "unknown")
    if sort_order != "coordinate":
        bam.close()
        raise InputError(path, f"BAM is not coordinate-sorted (header SO:{sort_order}); run samtools sort")
    if not bam.has_index():
        bam.close()
        _build_index(path)
        bam = _open_bam(path)
    return bam


def _open_bam(path: Path):
    try:
        return pysam.AlignmentFile(str(path), "rb")
    except (ValueError, OSError) as err:
        raise InputError(path, f"not a readable BAM file ({err})") from None


def _build_index(path: Path) -> None:
    if not os.access(path.parent, os.W_OK):
        raise InputError(path, f"no index (.bai); run samtools index {path}")
    previous_verbosity = pysam.set_verbosity(0)  # htslib would print its own errors; ours are clearer
    try:
        pysam.index(str(path))
    except pysam.SamtoolsError as err:
        Path(f"{path}.bai").unlink(missing_ok=True)
        if _records_out_of_order(path):
            raise InputError(path, "BAM is not coordinate-sorted (records out of order); run samtools sort") from None
        raise InputError(path, f"no index (.bai) and samtools index failed: {err}") from None
    finally:
        pysam.set_verbosity(previous_verbosity)
    log.info("no index found for %s; built %s.bai", path, path)


def _records_out_of_order(path: Path) -> bool:
    """Scan the whole file: only run to explain why indexing failed."""
    previous = (-1, -1)
    with pysam.AlignmentFile(str(path), "rb") as bam:
        for read in bam.fetch(until_eof=True):
            here = (read.reference_id if read.reference_id >= 0 else 1 << 40, read.reference_start)
            if here < previous:
                return True
            previous = here
    return False


def _count_skipped_contigs(bam, chrom_sizes: dict[str, int], rf: ReadFilter, counts: FilterCounts) -> None:
    """Count records we never fetch (excluded contigs, contigs outside chrom sizes, unplaced) from the index."""
    for stat in bam.get_index_statistics():
        if stat.contig in rf.exclude_chroms:
            counts.unmapped += stat.unmapped
            counts.excluded_chrom += stat.mapped
        elif stat.contig not in chrom_sizes:
            counts.unmapped += stat.unmapped
            counts.not_in_chrom_sizes += stat.mapped
    counts.unmapped += bam.nocoordinate


def contig_records(path: Path, bam, chrom: str) -> dict[str, np.ndarray]:
    """One contig's records as int64 arrays: ``flags``, ``mapqs``, ``starts``, ``ends`` (0 when unmapped) and
    ``tlens``; a corrupt file, a stale index or records out of order are one clear InputError."""
    flags, mapqs, starts, ends, tlens = [], [], [], [], []
    try:
        for read in bam.fetch(chrom):
            flags.append(read.flag)
            mapqs.append(read.mapping_quality)
            starts.append(read.reference_start)
            ends.append(read.reference_end or 0)  # None when unmapped; the read filter drops those
            tlens.append(read.template_length)
    except OSError as err:
        index = next((i for i in (f"{path}.bai", f"{path}.csi", str(path.with_suffix(".bai")))
                      if os.path.exists(i)), f"{path}.bai")
        if _index_is_stale(path):
            raise InputError(path, f"its index {index} does not match it (a stale index, from another or an older "
                                   f"file?); rebuild it with samtools index {path}") from None
        raise InputError(path, f"cannot read records on {chrom} ({err}): the file is corrupt or truncated") from None
    records = {name: np.asarray(values, dtype=np.int64) for name, values in
               (("flags", flags), ("mapqs", mapqs), ("starts", starts), ("ends", ends), ("tlens", tlens))}
    if np.any(records["starts"][1:] < records["starts"][:-1]):
        raise InputError(path, f"BAM is not coordinate-sorted (records out of order on {chrom}); run samtools sort")
    return records


def _chrom_insertions(path: Path, bam, chrom: str, rf: ReadFilter, counts: FilterCounts) -> np.ndarray:
    """Insertions of one contig: its records' numbers, then filter and shift with numpy."""
    r = contig_records(path, bam, chrom)
    keep = read_filter_mask(r["flags"], r["mapqs"], rf, counts)
    reverse = (r["flags"] & REVERSE) != 0
    positions = np.where(reverse, r["ends"] - 1 + rf.shift_minus, r["starts"] + rf.shift_plus)
    return positions[keep]


def read_filter_mask(flags: np.ndarray, mapqs: np.ndarray, rf: ReadFilter, counts: FilterCounts) -> np.ndarray:
    """Boolean mask of kept records; each dropped record is counted once, under its first reason."""
    improper = ((flags & PAIRED) != 0) & ((flags & PROPER_PAIR) == 0)
    reasons = [  # in the documented order of precedence
        ("unmapped", (flags & UNMAPPED) != 0),
        ("secondary", ((flags & SECONDARY) != 0) & (not rf.keep_secondary)),
        ("supplementary", ((flags & SUPPLEMENTARY) != 0) & (not rf.keep_supplementary)),
        ("qcfail", ((flags & QCFAIL) != 0) & (not rf.keep_qcfail)),
        ("duplicate", ((flags & DUPLICATE) != 0) & (not rf.keep_duplicates)),
        ("improper_pair", improper & (not rf.keep_improper_pairs)),
        ("low_mapq", mapqs < rf.min_mapq),
    ]
    keep = np.ones(len(flags), dtype=bool)
    for name, dropped in reasons:
        dropped = dropped & keep
        setattr(counts, name, getattr(counts, name) + int(dropped.sum()))
        keep &= ~dropped
    counts.kept += int(keep.sum())
    return keep


# ---------------------------------------------------------------- insertions BED and fragments

def _text_insertions(path: Path, chrom_sizes: dict[str, int], fragments: bool, counts: FilterCounts,
                     strict: bool = False) -> Iterator[tuple[str, np.ndarray]]:
    """Stream a chromosome-grouped text file; the chromosome's lines are parsed with numpy at once.
    ``strict``: a line outside its chromosome is an InputError (otherwise dropped, counted and warned of)."""
    unknown: list[str] = []
    shared = False
    outside_before = counts.outside_chrom
    for chrom, block in _chrom_blocks(path, fragments):
        if chrom not in chrom_sizes:
            counts.not_in_chrom_sizes += len(block.line_numbers)
            unknown.append(chrom)
            continue
        if strict:
            _refuse_outside_chrom(path, chrom, chrom_sizes[chrom], block, fragments)
        positions = _keep_in_chrom(_block_positions(path, block, fragments), chrom_sizes[chrom], counts)
        counts.kept += len(positions)
        counts.per_chrom[chrom] = len(positions)
        shared = True
        yield chrom, positions
    if not unknown and not shared:
        raise InputError(path, "no data lines (file is empty)")
    if not shared:
        check_shared_chroms(path, unknown, chrom_sizes)
    if counts.outside_chrom > outside_before:
        log.warning("%s: dropped %s insertions at negative or beyond-the-end coordinates of their chromosome "
                    "(see --stats)", path, f"{counts.outside_chrom - outside_before:,}")


def _refuse_outside_chrom(path: Path, chrom: str, length: int, block: "_Block", fragments: bool) -> None:
    """--strict: the first line with an insertion outside ``[0, length)`` is an InputError (a BED line's
    insertion is its start; a fragment's are its start and end - 1)."""
    starts = _int_column(path, block.starts, block.line_numbers, "start")
    ends = _int_column(path, block.ends, block.line_numbers, "end") if fragments else starts + 1
    bad = np.flatnonzero((starts < 0) | (ends > length))
    if len(bad):
        line, start, end = block.line_numbers[bad[0]], starts[bad[0]], ends[bad[0]]
        problem = (f"start {start} is negative" if start < 0 else
                   f"{'end ' + str(end) if fragments else 'start ' + str(start)} is beyond the end of {chrom} "
                   f"({length:,} bp)")
        raise InputError(path, f"line {line}: {problem} (--strict)")


@dataclass
class _Block:
    """The raw columns of one chromosome's lines, still as strings."""

    starts: list[str] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)
    counts: list[str] = field(default_factory=list)   # fragments column 5 ('1' when absent)
    line_numbers: list[int] = field(default_factory=list)


def _chrom_blocks(path: Path, fragments: bool, chunk_lines: int | None = None) -> Iterator[tuple[str, _Block]]:
    """The file's lines grouped by chromosome (refusing a chromosome that comes back), as unparsed columns;
    with ``chunk_lines`` a chromosome comes in blocks of at most that many lines."""
    done: set[str] = set()
    chrom, block = None, _Block()
    line_no = 0
    try:
        with open_text(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                if is_header(line):
                    continue
                fields = line.split(None, 5)
                if len(fields) < 3:
                    raise InputError(path, f"line {line_no}: expected at least 3 columns, got {line.rstrip()!r}")
                if fields[0] != chrom:
                    if chrom is not None:
                        yield chrom, block
                        done.add(chrom)
                    chrom, block = fields[0], _Block()
                    if chrom in done:
                        raise InputError(path, f"line {line_no}: not sorted by chromosome ({chrom} appears again "
                                               "after another chromosome); run sort -k1,1 -k2,2n")
                elif chunk_lines and len(block.line_numbers) >= chunk_lines:
                    yield chrom, block
                    block = _Block()
                block.starts.append(fields[1])
                block.ends.append(fields[2])
                if fragments:
                    block.counts.append(fields[4] if len(fields) > 4 else "1")
                block.line_numbers.append(line_no)
    except READ_ERRORS as err:
        raise InputError(path, f"line {line_no + 1}: cannot read ({err}); the file is corrupt, truncated or not "
                               f"text") from None
    if chrom is not None:
        yield chrom, block


def _block_positions(path: Path, block: _Block, fragments: bool) -> np.ndarray:
    starts = _int_column(path, block.starts, block.line_numbers, "start")
    ends = _int_column(path, block.ends, block.line_numbers, "end")
    bad = np.flatnonzero(ends <= starts)
    if len(bad):
        raise InputError(path, f"line {block.line_numbers[bad[0]]}: end ({ends[bad[0]]}) <= start ({starts[bad[0]]})")
    if not fragments:
        return starts
    repeats = _int_column(path, block.counts, block.line_numbers, "count (column 5)")
    bad = np.flatnonzero(repeats < 1)
    if len(bad):
        raise InputError(path, f"line {block.line_numbers[bad[0]]}: count must be >= 1, got {repeats[bad[0]]}")
    bad = np.flatnonzero(repeats > MAX_FRAGMENT_COUNT)
    if len(bad):
        raise InputError(path, f"line {block.line_numbers[bad[0]]}: count {repeats[bad[0]]} is implausible for one "
                               f"fragment (at most {MAX_FRAGMENT_COUNT:,}); is column 5 a count?")
    return np.concatenate([np.repeat(starts, repeats), np.repeat(ends - 1, repeats)])


def _int_column(path: Path, values: list[str], line_numbers: list[int], what: str) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except (ValueError, OverflowError):
        for value, line_no in zip(values, line_numbers):
            if not value.lstrip("-").isdigit():
                raise InputError(path, f"line {line_no}: {what} is not an integer: {value!r}") from None
        raise InputError(path, f"{what} column has values that are not 64-bit integers") from None


def iter_fragments(path: str | os.PathLike, chrom_sizes: dict[str, int]
                   ) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(chrom, starts, ends, counts)`` of a fragments file, one chromosome at a time (QC's view of it).

    Same parsing and checks as :func:`iter_insertions` with ``fmt="fragments"``
    (grouped by chromosome, integer columns, ``end > start``, ``count >= 1``);
    chromosomes absent from ``chrom_sizes`` are skipped, and none shared is an InputError.
    """
    path = _existing_nonempty(path)
    unknown, shared = [], False
    for chrom, block in _chrom_blocks(path, fragments=True):
        if chrom not in chrom_sizes:
            unknown.append(chrom)
            continue
        starts = _int_column(path, block.starts, block.line_numbers, "start")
        ends = _int_column(path, block.ends, block.line_numbers, "end")
        repeats = _int_column(path, block.counts, block.line_numbers, "count (column 5)")
        bad = np.flatnonzero((ends <= starts) | (repeats < 1))
        if len(bad):
            raise InputError(path, f"line {block.line_numbers[bad[0]]}: need end > start and count >= 1, got "
                                   f"{starts[bad[0]]}, {ends[bad[0]]}, {repeats[bad[0]]}")
        shared = True
        yield chrom, starts, ends, repeats
    if not unknown and not shared:
        raise InputError(path, "no data lines (file is empty)")
    if not shared:
        check_shared_chroms(path, unknown, chrom_sizes)


def iter_fragment_chunks(path: str | os.PathLike, chunk_lines: int = 200_000
                         ) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(chrom, starts, ends, counts)`` of a fragments file in chunks of at most ``chunk_lines`` lines.

    The streaming form of :func:`iter_fragments` (same checks: grouped by
    chromosome, integer columns, ``end > start``, ``count >= 1``) for work whose
    memory must not grow with a chromosome's fragments; every chromosome is
    yielded, consecutive chunks may share one.
    """
    path = _existing_nonempty(path)
    empty = True
    for chrom, block in _chrom_blocks(path, fragments=True, chunk_lines=chunk_lines):
        empty = False
        starts = _int_column(path, block.starts, block.line_numbers, "start")
        ends = _int_column(path, block.ends, block.line_numbers, "end")
        repeats = _int_column(path, block.counts, block.line_numbers, "count (column 5)")
        bad = np.flatnonzero((ends <= starts) | (repeats < 1) | (starts < 0))
        if len(bad):
            raise InputError(path, f"line {block.line_numbers[bad[0]]}: need 0 <= start < end and count >= 1, got "
                                   f"{starts[bad[0]]}, {ends[bad[0]]}, {repeats[bad[0]]}")
        yield chrom, starts, ends, repeats
    if empty:
        raise InputError(path, "no data lines (file is empty)")


# ---------------------------------------------------------------- output

def write_insertions_bed(path: str | os.PathLike, chrom_positions: Iterator[tuple[str, np.ndarray]]) -> int:
    """Write BED6 (gzip when the name ends in .gz), atomically; return the number of lines.

    ``.gz`` output is BGZF (bgzip) and, sorted as the positions come, gets a tabix index beside it
    (``.tbi``, or ``.csi`` for positions past tabix's 512 Mb limit), so browsers and ``tabix`` fetch a
    region without reading the file. Name is ``.``, score ``0``, strand ``+`` (see ``_bed_lines``).
    """
    n_lines, last_end = 0, 0
    with atomic_path(path) as tmp:
        # "wb1": BGZF at level 1 writes 4x faster than the default for a few % more bytes
        out = pysam.BGZFile(str(tmp), "wb1") if str(path).endswith(".gz") else open(tmp, "wb")
        with out:
            for chrom, positions in chrom_positions:
                out.write(_bed_lines(chrom, positions).encode())
                n_lines += len(positions)
                last_end = max(last_end, int(positions.max()) + 1 if len(positions) else 0)
    if str(path).endswith(".gz"):
        write_tabix_index(path, csi=last_end > TBI_MAX_POSITION)
    return n_lines


TBI_MAX_POSITION = 1 << 29  # a .tbi index stores positions below 2^29; .csi goes further


def write_tabix_index(path: str | os.PathLike, csi: bool = False) -> Path | None:
    """Index a BGZF, position-sorted BED-like file (chrom, start, end first) with tabix, atomically.

    Writes ``PATH.tbi``, or ``PATH.csi`` with ``csi`` or when a position passes the .tbi limit, and removes
    the other kind, so no stale index is left beside new data. Returns the index, or None (a warning)
    when the file is not sorted, which tabix needs.
    """
    for use_csi in ([True] if csi else [False, True]):
        index = Path(f"{path}.csi" if use_csi else f"{path}.tbi")
        try:
            with atomic_path(index) as tmp:
                pysam.tabix_index(str(path), preset="bed", index=str(tmp), csi=use_csi, force=True)
        except OSError:
            continue
        Path(f"{path}.tbi" if use_csi else f"{path}.csi").unlink(missing_ok=True)
        return index
    for stale in (Path(f"{path}.tbi"), Path(f"{path}.csi")):
        stale.unlink(missing_ok=True)
    log.warning("%s is not sorted by position: no tabix index written", path)
    return None


def _bed_lines(chrom: str, positions: np.ndarray) -> str:
    # Strand '+' (not '.'): MACS3 rejects '.', and for a 1-bp insertion with
    # ``--shift -100 --extsize 200`` either strand gives the same centred window.
    return "".join(f"{chrom}\t{p}\t{p + 1}\t.\t0\t+\n" for p in positions.tolist())
