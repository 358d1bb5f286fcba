"""A small but realistic ATAC-seq simulator (seconds, not minutes).

Makes a random genome, accessible regions of varying strength, and paired-end
fragments: nucleosome-free (< 150 bp) inside peaks, mono- and di-nucleosome
lengths around them, plus uniform background. Writes FASTQ pairs, a sorted and
indexed BAM with the true alignments, and the truth tracks.

The model, in one place:

- Genome: random ACGT, GC content drawn per 10 kb block (35-60 %), plus a tiny
  ``chrM`` (16,569 bp) listed in the FASTA and in ``chrom.sizes`` alike; the
  default read filter drops it.
- Peaks: ``n_peaks_per_mb`` per chromosome at random, at least 3 kb apart,
  200-1000 bp wide, log-normal strengths (heavy tail: a few very strong sites).
- Fragments (molecules; their length is the BAM TLEN):
  a share ``frip`` of the good nuclear fragments belongs to peaks - 85 % of
  those are nucleosome-free (log-normal around 80 bp, 30-149 bp) centred
  inside the peak, 15 % mono/di-nucleosomal (180-250 / 350-450 bp) with one
  end near a peak edge and reaching outwards (the nucleosome next to the open
  region). The rest is uniform background with a mixed length distribution.
  On top of those: 2 % chrM fragments, 1 % MAPQ-0 background fragments and
  3 % PCR duplicates (flagged copies of good fragments) for filter tests.
- Tn5 shift convention: the pipeline maps a plus-strand read to the insertion
  ``reference_start + 4`` and a minus-strand read to ``reference_end - 1 - 5``.
  A molecule ``[a, a + M)`` is therefore placed so that these shifted positions
  are exactly its two simulated Tn5 sites ``a + 4`` and ``a + M - 6``. The truth
  accessibility track is the expected number of such insertions per base from
  good fragments (MAPQ 42, not duplicates, not chrM).
- Reads: the mate on the plus strand reads ``read_length`` bases from ``a``,
  the other mate the reverse complement ending at ``a + M`` (reads clipped to
  the molecule length); which mate is R1 is random. Base qualities are all
  'I' and 0.1 % of bases are sequencing errors (also in the BAM's SEQ).
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam
import pyBigWig
from scipy import stats

from atacdenoise.errors import InputError

CHRM_LENGTH = 16_569
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
COMPLEMENT = np.zeros(256, dtype=np.uint8)
COMPLEMENT[np.frombuffer(b"ACGTN", dtype=np.uint8)] = np.frombuffer(b"TGCAN", dtype=np.uint8)

# Shares of all fragments that exist to exercise the read filters.
CHRM_SHARE, LOW_MAPQ_SHARE, DUPLICATE_SHARE = 0.02, 0.01, 0.03
NFR_SHARE_OF_PEAK = 0.85          # the rest of the peak fragments are flanking nucleosomal ones
ERROR_RATE = 0.001
SHIFT_PLUS, SHIFT_MINUS = 4, 5     # cut = molecule start + 4; cut = molecule end (exclusive) - 1 - 5
PEAK_SPACING, EDGE_MARGIN = 3_000, 5_000


# ---------------------------------------------------------------- length distributions

def _pmf_over(lengths: np.ndarray, density: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lengths, density / density.sum()


def _nfr_pmf(lengths: np.ndarray) -> np.ndarray:
    """Nucleosome-free: log-normal around 80 bp, 30-149 bp."""
    return stats.lognorm.pdf(lengths, 0.3, scale=80) * ((lengths >= 30) & (lengths < 150))


def _mono_pmf(lengths: np.ndarray) -> np.ndarray:
    return stats.norm.pdf(lengths, 205, 18) * ((lengths >= 180) & (lengths <= 250))


def _di_pmf(lengths: np.ndarray) -> np.ndarray:
    return stats.norm.pdf(lengths, 395, 25) * ((lengths >= 350) & (lengths <= 450))


def _mix(lengths: np.ndarray, shares_and_pmfs) -> tuple[np.ndarray, np.ndarray]:
    density = sum(share * pmf(lengths) / pmf(lengths).sum() for share, pmf in shares_and_pmfs)
    return _pmf_over(lengths, density)


NFR_LENGTHS = _pmf_over(np.arange(30, 150), _nfr_pmf(np.arange(30, 150)))
FLANK_LENGTHS = _mix(np.arange(150, 501), [(0.7, _mono_pmf), (0.3, _di_pmf)])
BACKGROUND_LENGTHS = _mix(np.arange(30, 501), [(0.45, _nfr_pmf), (0.4, _mono_pmf), (0.15, _di_pmf)])


def _draw(rng: np.random.Generator, pmf: tuple[np.ndarray, np.ndarray], n: int) -> np.ndarray:
    lengths, p = pmf
    return rng.choice(lengths, size=n, p=p)


# ---------------------------------------------------------------- genome and peaks

def _random_genome(rng: np.random.Generator, length: int, block: int = 10_000) -> np.ndarray:
    """uint8 ASCII bases; GC content varies from block to block."""
    gc = np.repeat(rng.uniform(0.35, 0.6, size=-(-length // block)), block)[:length]
    u = rng.random(length)
    codes = np.where(u < gc, np.where(u < gc / 2, 1, 2), np.where(u < gc + (1 - gc) / 2, 0, 3))
    return BASES[codes]


@dataclass
class PeakSet:
    chrom_index: np.ndarray  # int64 index into the nuclear chromosome list
    starts: np.ndarray
    ends: np.ndarray
    strength: np.ndarray     # relative share of peak fragments

    @property
    def centers(self) -> np.ndarray:
        return (self.starts + self.ends) // 2


def _place_peaks(rng: np.random.Generator, n_chroms: int, chrom_length: int, per_mb: float) -> PeakSet:
    wanted = max(1, round(per_mb * chrom_length / 1e6))
    chrom_idx, starts, ends = [], [], []
    for c in range(n_chroms):
        candidates = np.sort(rng.integers(EDGE_MARGIN, chrom_length - EDGE_MARGIN, size=2 * wanted))
        kept = [candidates[0]]
        for x in candidates[1:]:  # keep peaks apart so flanking fragments do not pile onto neighbours
            if x - kept[-1] >= PEAK_SPACING:
                kept.append(x)
        centers = np.sort(rng.permutation(np.array(kept))[:wanted])
        widths = rng.integers(200, 1001, size=len(centers))
        chrom_idx.append(np.full(len(centers), c))
        starts.append(centers - widths // 2)
        ends.append(centers - widths // 2 + widths)
    strength = rng.lognormal(0.0, 1.0, size=sum(len(s) for s in starts))
    return PeakSet(np.concatenate(chrom_idx), np.concatenate(starts), np.concatenate(ends), strength / strength.sum())


# ---------------------------------------------------------------- fragments

@dataclass
class Fragments:
    """Molecules ``[start, start + length)`` on nuclear chromosome ``chrom`` (index; -1 = chrM)."""

    chrom: np.ndarray
    start: np.ndarray
    length: np.ndarray
    mapq: np.ndarray
    duplicate: np.ndarray


def _peak_fragments(rng, peaks: PeakSet, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NFR fragments centred in peaks and nucleosomal ones flanking them: (chrom, start, length)."""
    n_nfr = round(n * NFR_SHARE_OF_PEAK)
    which = rng.choice(len(peaks.strength), size=n, p=peaks.strength)
    widths = peaks.ends[which] - peaks.starts[which]
    lengths = np.concatenate([_draw(rng, NFR_LENGTHS, n_nfr), _draw(rng, FLANK_LENGTHS, n - n_nfr)])
    # NFR: molecule centre ~ Normal(peak centre, width / 6).
    centres = peaks.centers[which] + np.rint(rng.normal(0, widths / 6)).astype(np.int64)
    starts = centres - lengths // 2
    # Flanking: the inner end sits ~50 bp inside a peak edge, the molecule reaches outwards.
    flank = np.arange(n) >= n_nfr
    inner = np.rint(rng.normal(50, 15, size=n)).astype(np.int64)
    right_side = rng.random(n) < 0.5
    right_start = peaks.ends[which] - inner
    left_start = peaks.starts[which] + inner - lengths
    starts = np.where(flank, np.where(right_side, right_start, left_start), starts)
    return peaks.chrom_index[which], starts, lengths


def _uniform_fragments(rng, n: int, n_chroms: int, chrom_length: int, pmf) -> tuple[np.ndarray, ...]:
    lengths = _draw(rng, pmf, n)
    return rng.integers(0, n_chroms, size=n), rng.integers(0, chrom_length - lengths), lengths


def _make_fragments(rng, peaks: PeakSet, n_fragments: int, n_chroms: int, chrom_length: int,
                    frip: float) -> Fragments:
    n_chrm, n_lowq, n_dup = (round(n_fragments * s) for s in (CHRM_SHARE, LOW_MAPQ_SHARE, DUPLICATE_SHARE))
    n_good = n_fragments - n_chrm - n_lowq - n_dup
    n_peak = round(n_good * frip)
    parts = [
        _peak_fragments(rng, peaks, n_peak),
        _uniform_fragments(rng, n_good - n_peak, n_chroms, chrom_length, BACKGROUND_LENGTHS),
        _uniform_fragments(rng, n_lowq, n_chroms, chrom_length, BACKGROUND_LENGTHS),
    ]
    chrm_lengths = _draw(rng, BACKGROUND_LENGTHS, n_chrm)
    parts.append((np.full(n_chrm, -1), rng.integers(0, CHRM_LENGTH - chrm_lengths), chrm_lengths))
    chrom, start, length = (np.concatenate([p[i] for p in parts]).astype(np.int64) for i in range(3))
    mapq = np.full(len(chrom), 42)
    mapq[n_good:n_good + n_lowq] = 0
    copies = rng.integers(0, n_good, size=n_dup)  # PCR duplicates of good fragments
    frags = Fragments(np.concatenate([chrom, chrom[copies]]), np.concatenate([start, start[copies]]),
                      np.concatenate([length, length[copies]]), np.concatenate([mapq, mapq[copies]]),
                      np.arange(len(chrom) + n_dup) >= len(chrom))
    order = rng.permutation(len(frags.chrom))  # read names carry no hint of the fragment class
    return Fragments(*(getattr(frags, f)[order] for f in ("chrom", "start", "length", "mapq", "duplicate")))


# ---------------------------------------------------------------- truth

def _gaussian_pmf(sd: float) -> tuple[np.ndarray, np.ndarray]:
    """pmf of rint(Normal(0, sd)) on the integers within 4 sd."""
    half = int(np.ceil(4 * sd))
    offsets = np.arange(-half, half + 1)
    p = stats.norm.cdf(offsets + 0.5, scale=sd) - stats.norm.cdf(offsets - 0.5, scale=sd)
    return offsets, p / p.sum()


def _convolve(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """pmf of the sum of two independent integer variables given as (support, p)."""
    p = np.convolve(a[1], b[1])
    return np.arange(len(p)) + a[0][0] + b[0][0], p


def _add(track: np.ndarray, pmf: tuple[np.ndarray, np.ndarray], offset: int, weight: float) -> None:
    pos = pmf[0] + offset
    ok = (pos >= 0) & (pos < len(track))
    np.add.at(track, pos[ok], weight * pmf[1][ok])


def _truth_tracks(peaks: PeakSet, n_peak: int, n_background: int, n_chroms: int,
                  chrom_length: int) -> list[np.ndarray]:
    """Expected insertions per base from good fragments, the exact pmfs of the sampling above."""
    tracks = [np.full(chrom_length, 2 * n_background / (n_chroms * chrom_length)) for _ in range(n_chroms)]
    nfr_len, nfr_p = NFR_LENGTHS
    flank_len, flank_p = FLANK_LENGTHS
    left_nfr = (-(nfr_len // 2)[::-1], nfr_p[::-1])           # start - centre (ascending support)
    right_nfr = (nfr_len - nfr_len // 2 - 1, nfr_p)           # last base - centre
    inner = _gaussian_pmf(15)
    n_nfr = round(n_peak * NFR_SHARE_OF_PEAK)
    for i, (c, s, e) in enumerate(zip(peaks.chrom_index, peaks.starts, peaks.ends)):
        track, centre = tracks[c], (s + e) // 2
        centre_pmf = _gaussian_pmf((e - s) / 6)
        nfr_w = n_nfr * peaks.strength[i]
        _add(track, _convolve(centre_pmf, left_nfr), centre + SHIFT_PLUS, nfr_w)
        _add(track, _convolve(centre_pmf, right_nfr), centre - SHIFT_MINUS, nfr_w)
        flank_w = (n_peak - n_nfr) * peaks.strength[i] / 2
        # right flank: start = end - inner; left flank: last base = start + inner - 1
        start_pmf = (-inner[0][::-1], inner[1][::-1])
        _add(track, start_pmf, e - 50 + SHIFT_PLUS, flank_w)
        _add(track, _convolve(start_pmf, (flank_len - 1, flank_p)), e - 50 - SHIFT_MINUS, flank_w)
        _add(track, inner, s + 50 - 1 - SHIFT_MINUS, flank_w)
        _add(track, _convolve(inner, (-(flank_len - 1)[::-1], flank_p[::-1])), s + 50 - 1 + SHIFT_PLUS, flank_w)
    return tracks


# ---------------------------------------------------------------- reads

def _read_matrix(genome: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """(n, width) bases genome[start:start+length], padded with 'N' beyond length."""
    idx = starts[:, None] + np.arange(width)
    inside = np.arange(width) < lengths[:, None]
    return np.where(inside, genome[np.minimum(idx, len(genome) - 1)], ord("N")).astype(np.uint8)


def _add_errors(rng, reads: np.ndarray, lengths: np.ndarray) -> None:
    hit = (rng.random(reads.shape) < ERROR_RATE) & (np.arange(reads.shape[1]) < lengths[:, None])
    codes = np.searchsorted(BASES, reads[hit])
    reads[hit] = BASES[(codes + rng.integers(1, 4, size=len(codes))) % 4]


def _reverse_complement(reads: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Reverse-complement each row's first ``length`` bases (padding stays at the end)."""
    j = np.arange(reads.shape[1])
    src = np.where(j < lengths[:, None], lengths[:, None] - 1 - j, j)
    out = COMPLEMENT[np.take_along_axis(reads, src, axis=1)]
    out[j >= lengths[:, None]] = ord("N")
    return out


def _rows(matrix: np.ndarray, lengths: np.ndarray) -> list[str]:
    width = matrix.shape[1]
    text = matrix.tobytes().decode("ascii")
    return [text[i * width:i * width + n] for i, n in enumerate(lengths.tolist())]


@dataclass
class Mates:
    """The two reads of every fragment, plus-strand mate first (forward reference orientation)."""

    plus_start: np.ndarray
    minus_start: np.ndarray
    read_len: np.ndarray
    plus_seq: list[str]      # reference orientation
    minus_seq: list[str]     # reference orientation
    minus_seq_rc: list[str]  # as sequenced
    r1_is_plus: np.ndarray


def _make_reads(rng, frags: Fragments, genomes: list[np.ndarray], read_length: int) -> Mates:
    n = len(frags.chrom)
    read_len = np.minimum(frags.length, read_length)
    plus_start = frags.start
    minus_start = frags.start + frags.length - read_len
    plus = np.empty((n, read_length), dtype=np.uint8)
    minus = np.empty((n, read_length), dtype=np.uint8)
    for c, genome in enumerate(genomes):
        on = frags.chrom == (c if c < len(genomes) - 1 else -1)
        plus[on] = _read_matrix(genome, plus_start[on], read_len[on], read_length)
        minus[on] = _read_matrix(genome, minus_start[on], read_len[on], read_length)
    _add_errors(rng, plus, read_len)
    _add_errors(rng, minus, read_len)
    return Mates(plus_start, minus_start, read_len, _rows(plus, read_len), _rows(minus, read_len),
                 _rows(_reverse_complement(minus, read_len), read_len), rng.random(n) < 0.5)


# ---------------------------------------------------------------- writers

def _write_fasta(path: Path, names: list[str], genomes: list[np.ndarray], width: int = 60) -> None:
    with open(path, "w") as fh:
        for name, genome in zip(names, genomes):
            text = genome.tobytes().decode("ascii")
            fh.write(f">{name}\n")
            fh.write("\n".join(text[i:i + width] for i in range(0, len(text), width)) + "\n")


def _gzip_text(path: Path) -> io.TextIOWrapper:
    """gzip level 1 with no timestamp or name in the header, so equal seeds give equal bytes."""
    raw = gzip.GzipFile(path, mode="wb", compresslevel=1, mtime=0)
    return io.TextIOWrapper(raw, encoding="ascii")


def _write_fastq_pair(r1_path: Path, r2_path: Path, prefix: str, mates: Mates, chunk: int = 100_000) -> None:
    with _gzip_text(r1_path) as r1, _gzip_text(r2_path) as r2:
        for lo in range(0, len(mates.read_len), chunk):
            part1, part2 = [], []
            for i in range(lo, min(lo + chunk, len(mates.read_len))):
                qual = "I" * int(mates.read_len[i])
                plus, minus = mates.plus_seq[i], mates.minus_seq_rc[i]
                first, second = (plus, minus) if mates.r1_is_plus[i] else (minus, plus)
                part1.append(f"@{prefix}:1:{i} 1:N:0:1\n{first}\n+\n{qual}\n")
                part2.append(f"@{prefix}:1:{i} 2:N:0:1\n{second}\n+\n{qual}\n")
            r1.write("".join(part1))
            r2.write("".join(part2))


def _write_bam(path: Path, prefix: str, names: list[str], lengths: list[int], frags: Fragments,
               mates: Mates) -> None:
    """Both mates of every fragment as proper pairs, coordinate-sorted in numpy before writing."""
    n = len(frags.chrom)
    frag = np.concatenate([np.arange(n), np.arange(n)])
    is_plus = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    tid = np.where(frags.chrom < 0, len(names) - 1, frags.chrom)[frag]
    pos = np.concatenate([mates.plus_start, mates.minus_start])
    mate_pos = np.concatenate([mates.minus_start, mates.plus_start])
    order = np.lexsort((~is_plus, frag, pos, tid))
    frag, is_plus, tid, pos, mate_pos = frag[order], is_plus[order], tid[order], pos[order], mate_pos[order]
    is_r1 = mates.r1_is_plus[frag] == is_plus
    flag = (0x1 | 0x2 | np.where(is_r1, 0x40, 0x80) | np.where(is_plus, 0x20, 0x10)
            | np.where(frags.duplicate[frag], 0x400, 0))
    tlen = np.where(is_plus, frags.length[frag], -frags.length[frag])
    header = pysam.AlignmentHeader.from_dict({
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": s, "LN": n_} for s, n_ in zip(names, lengths)],
        "PG": [{"ID": "atacdenoise-simulate", "PN": "atacdenoise"}],
    })
    columns = zip(frag.tolist(), is_plus.tolist(), flag.tolist(), tid.tolist(), (pos + 1).tolist(),
                  frags.mapq[frag].tolist(), mates.read_len[frag].tolist(), (mate_pos + 1).tolist(), tlen.tolist())
    with pysam.AlignmentFile(str(path), "wb", header=header, threads=2) as bam:
        for i, plus, fl, t, p, q, rl, mp, tl in columns:
            seq = mates.plus_seq[i] if plus else mates.minus_seq[i]
            line = f"{prefix}:1:{i}\t{fl}\t{names[t]}\t{p}\t{q}\t{rl}M\t=\t{mp}\t{tl}\t{seq}\t{'I' * rl}"
            bam.write(pysam.AlignedSegment.fromstring(line, header))
    pysam.index(str(path))


def _write_truth_bigwig(path: Path, names: list[str], lengths: list[int], tracks: list[np.ndarray]) -> None:
    """Runs of equal (float32) values as bedGraph entries; chrM has no truth (it is filtered)."""
    with pyBigWig.open(str(path), "w") as bw:
        bw.addHeader(list(zip(names, lengths)))
        for name, track in zip(names, tracks):
            values = track.astype(np.float32)
            change = np.flatnonzero(np.diff(values)) + 1
            starts = np.concatenate([[0], change])
            ends = np.concatenate([change, [len(values)]])
            bw.addEntries([name] * len(starts), starts.tolist(), ends=ends.tolist(),
                          values=values[starts].astype(float).tolist())


def _write_truth_peaks(path: Path, names: list[str], peaks: PeakSet) -> None:
    score = np.rint(1000 * peaks.strength / peaks.strength.max()).astype(int)
    order = np.lexsort((peaks.starts, peaks.chrom_index))
    with open(path, "w") as fh:
        for k, i in enumerate(order):
            fh.write(f"{names[peaks.chrom_index[i]]}\t{peaks.starts[i]}\t{peaks.ends[i]}\tpeak_{k + 1}\t{score[i]}\n")


# ---------------------------------------------------------------- entry point

def simulate(
    out_dir: str | os.PathLike,
    n_chroms: int = 2,
    chrom_length: int = 2_000_000,
    n_fragments: int = 200_000,
    n_peaks_per_mb: int = 40,
    frip: float = 0.4,
    read_length: int = 50,
    seed: int = 0,
    prefix: str = "sim",
    fastq: bool = True,
) -> dict[str, str]:
    """Write ``genome.fa`` (+ .fai), ``chrom.sizes``, ``{prefix}_R1.fastq.gz``,
    ``{prefix}_R2.fastq.gz``, ``{prefix}.bam`` (+ .bai), ``truth_peaks.bed`` and
    ``truth_accessibility.bw`` (the expected insertion rate per base); return their paths.

    Deterministic for a given ``seed``. ``fastq=False`` skips the FASTQ pair
    (benchmarks need only the BAM). Every file is written into a staging folder
    and moved into ``out_dir`` only when complete.
    """
    if chrom_length < 4 * EDGE_MARGIN:
        raise InputError(None, f"--chrom-length must be at least {4 * EDGE_MARGIN:,} bp")
    if n_chroms < 1 or n_fragments < 1:
        raise InputError(None, "need at least one chromosome and one fragment")
    if not 0 <= frip <= 1:
        raise InputError(None, f"frip must be between 0 and 1, got {frip}")
    rng = np.random.default_rng(seed)
    nuclear = [f"chr{i + 1}" for i in range(n_chroms)]
    names, lengths = nuclear + ["chrM"], [chrom_length] * n_chroms + [CHRM_LENGTH]
    genomes = [_random_genome(rng, n) for n in lengths]
    peaks = _place_peaks(rng, n_chroms, chrom_length, n_peaks_per_mb)
    frags = _make_fragments(rng, peaks, n_fragments, n_chroms, chrom_length, frip)
    mates = _make_reads(rng, frags, genomes, read_length)
    n_good = int(((frags.chrom >= 0) & (frags.mapq > 0) & ~frags.duplicate).sum())
    n_peak = round(n_good * frip)
    truth = _truth_tracks(peaks, n_peak, n_good - n_peak, n_chroms, chrom_length)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "genome": "genome.fa", "genome_index": "genome.fa.fai", "chrom_sizes": "chrom.sizes",
        "bam": f"{prefix}.bam", "bam_index": f"{prefix}.bam.bai",
        "truth_peaks": "truth_peaks.bed", "truth_accessibility": "truth_accessibility.bw",
    }
    if fastq:
        files.update(r1=f"{prefix}_R1.fastq.gz", r2=f"{prefix}_R2.fastq.gz")
    staging = Path(tempfile.mkdtemp(prefix=".simulate.", suffix=".tmp", dir=out))
    try:
        _write_fasta(staging / "genome.fa", names, genomes)
        pysam.faidx(str(staging / "genome.fa"))
        (staging / "chrom.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in zip(names, lengths)))
        if fastq:
            _write_fastq_pair(staging / files["r1"], staging / files["r2"], prefix, mates)
        _write_bam(staging / files["bam"], prefix, names, lengths, frags, mates)
        _write_truth_peaks(staging / "truth_peaks.bed", names, peaks)
        _write_truth_bigwig(staging / "truth_accessibility.bw", nuclear, lengths[:n_chroms], truth)
        for name in files.values():  # data files before their indexes, so indexes stay newer
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {key: str(out / name) for key, name in files.items()}


# ================================================================ reads at real fragments on a real genome
#
# ``simulate_fastq`` turns a fragments file (10x style: Tn5-shifted, insertions at ``start`` and ``end - 1``)
# and its reference FASTA into the paired FASTQ a sequencer would have written for those molecules:
#
# - The shift is undone: a fragment ``[start, end)`` is the molecule ``[start - 4, end + 5)``, so that after
#   alignment the read filter's own shift (plus strand ``reference_start + 4``, minus strand
#   ``reference_end - 1 - 5``, io/reads.py) puts the insertions exactly at ``start`` and ``end - 1``.
#   Molecules that would leave the chromosome are skipped (and counted).
# - The mate on the plus strand reads the molecule's first ``read_length`` bases, the other the reverse
#   complement of its last ones; which one is R1 is random. A molecule shorter than the read is read through
#   into the Nextera adapter (:data:`NEXTERA_R1_ADAPTER` / :data:`NEXTERA_R2_ADAPTER`, then the index read's
#   primer and the flow cell's poly-G), as real libraries do.
# - Base qualities (Phred+33) fall along the read: the error probability grows linearly from
#   ``error_rate / 2`` at the first base to ``3 * error_rate / 2`` at the last (mean ``error_rate``), each
#   base's quality is that probability in Phred with +-2 jitter, and the base is replaced by another one with
#   exactly the probability its quality states. Reference ``N`` stays ``N`` with quality 2 ('#').
# - A fragment with count ``k`` (column 5) gives ``k`` read pairs (PCR duplicates).
#
# Memory: one chromosome's sequence and one chunk of fragments; the fragments file is streamed, so it may list
# chromosomes in any order: io/genome.py's FASTA reader first writes every chromosome's base codes to a
# temporary folder in ``out_dir`` (one byte per base of the genome, removed at the end).

# Illumina Nextera read-through: the mosaic end, then the adapter towards the index primer.
MOSAIC_END = "CTGTCTCTTATACACATCT"
NEXTERA_R1_ADAPTER = MOSAIC_END + "CCGAGCCCACGAGACTAAGGCGAATCTCGTATGCCGTCTTCTGCTTG"
NEXTERA_R2_ADAPTER = MOSAIC_END + "GACGCTGCCGACGATAGATCGCGTGTAGATCTCGGTGGTCGCCGTATCATT"
CODE_TO_BASE = np.frombuffer(b"NACGT", dtype=np.uint8)  # io/genome.py BASE_CODE -> ASCII
MAX_PHRED = 41


def _adapter_array(adapter: str, width: int) -> np.ndarray:
    """``adapter`` padded with poly-G (a two-colour sequencer's dark cycles) to ``width`` bases."""
    return np.frombuffer(adapter.encode().ljust(width, b"G")[:width], dtype=np.uint8)


def read_pairs(sequence: np.ndarray, mol_start: np.ndarray, mol_end: np.ndarray, read_length: int,
               r1_is_plus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R1 and R2 bases, as sequenced, of molecules ``[mol_start, mol_end)`` of ``sequence`` (ASCII uint8).

    The plus-strand mate reads ``sequence[mol_start:]``, the minus-strand mate the reverse complement of
    ``sequence[:mol_end]``; both read through into their Nextera adapter after ``mol_end - mol_start``
    bases. Returns two ``(n, read_length)`` uint8 matrices (no errors yet).
    """
    n = len(mol_start)
    j = np.arange(read_length)
    length = (mol_end - mol_start)[:, None]
    inside = j < length
    plus = sequence[np.clip(mol_start[:, None] + j, 0, len(sequence) - 1)]
    minus = COMPLEMENT[sequence[np.clip(mol_end[:, None] - 1 - j, 0, len(sequence) - 1)]]
    r1_adapter = _adapter_array(NEXTERA_R1_ADAPTER, 2 * read_length)
    r2_adapter = _adapter_array(NEXTERA_R2_ADAPTER, 2 * read_length)
    into_adapter = np.clip(j - length, 0, None)
    first = r1_is_plus[:, None]
    r1 = np.where(first, plus, minus)
    r2 = np.where(first, minus, plus)
    r1 = np.where(inside, r1, r1_adapter[into_adapter])
    r2 = np.where(inside, r2, r2_adapter[into_adapter])
    assert r1.shape == (n, read_length)
    return r1.astype(np.uint8), r2.astype(np.uint8)


def base_qualities(rng: np.random.Generator, shape: tuple[int, int], error_rate: float) -> np.ndarray:
    """Phred scores (int) falling along the read: error probability from ``error_rate / 2`` to ``1.5 x``."""
    n, width = shape
    p = error_rate * (0.5 + np.arange(width) / max(width - 1, 1))
    centre = -10 * np.log10(np.clip(p, 1e-6, 0.75))
    return np.clip(np.rint(centre + rng.integers(-2, 3, size=shape)), 2, MAX_PHRED).astype(np.int64)


def add_errors(rng: np.random.Generator, reads: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Substitute bases with the probability their quality states; ``N`` stays ``N`` at quality 2.

    Changes ``reads`` in place; returns the mask of substituted bases.
    """
    is_n = reads == ord("N")
    quality[is_n] = 2
    hit = (rng.random(reads.shape) < 10.0 ** (-quality / 10)) & ~is_n
    codes = np.searchsorted(BASES, reads[hit])
    reads[hit] = BASES[(codes + rng.integers(1, 4, size=len(codes))) % 4]
    return hit


def _fastq_text(names: list[str], mate: int, reads: np.ndarray, quality: np.ndarray) -> str:
    width = reads.shape[1]
    seq = reads.tobytes().decode("ascii")
    qual = (quality + 33).astype(np.uint8).tobytes().decode("ascii")
    return "".join(f"@{name} {mate}:N:0:1\n{seq[i * width:(i + 1) * width]}\n+\n{qual[i * width:(i + 1) * width]}\n"
                   for i, name in enumerate(names))


@dataclass
class FastqSummary:
    r1: str
    r2: str
    truth: str              # the fragments the pairs were made from (fragments format, as given)
    chroms: list
    fragments: int = 0      # fragment lines used
    pairs: int = 0          # read pairs written (a fragment's count of them)
    off_edge: int = 0       # fragments whose unshifted molecule leaves the chromosome: skipped
    read_through: int = 0   # pairs whose molecule is shorter than the read (adapter read-through)
    substitutions: int = 0  # bases changed by sequencing errors


def simulate_fastq(
    fragments: str | os.PathLike,
    fasta: str | os.PathLike,
    out_dir: str | os.PathLike,
    prefix: str = "sample",
    read_length: int = 50,
    error_rate: float = 0.002,
    chroms: list[str] | None = None,
    max_fragments: int | None = None,
    seed: int = 0,
    chunk_lines: int = 100_000,
    progress: bool | None = None,
) -> FastqSummary:
    """Write ``{prefix}_R1.fastq.gz``, ``{prefix}_R2.fastq.gz`` and ``{prefix}.fragments.tsv.gz`` (the fragment
    lines used: the truth) into ``out_dir``, from the molecules of ``fragments`` on the genome of ``fasta``.

    ``chroms`` keeps only those chromosomes; ``max_fragments`` stops after that many fragment lines (in file
    order). Deterministic for a given ``seed``; the files appear only when complete.
    """
    import logging

    from tqdm import tqdm

    from atacdenoise.io.atomic import atomic_path
    from atacdenoise.io.genome import iter_sequence_bins, read_base_codes
    from atacdenoise.io.reads import fragment_molecules, iter_fragment_chunks

    log = logging.getLogger(__name__)
    if read_length < 10:
        raise InputError(None, f"--read-length must be at least 10, got {read_length}")
    if not 0 <= error_rate < 0.5:
        raise InputError(None, f"--error-rate must be in [0, 0.5), got {error_rate}")
    if max_fragments is not None and max_fragments < 1:
        raise InputError(None, f"--max-fragments must be at least 1, got {max_fragments}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty() if progress is None else progress
    rng = np.random.default_rng(seed)
    paths = {"r1": out / f"{prefix}_R1.fastq.gz", "r2": out / f"{prefix}_R2.fastq.gz",
             "truth": out / f"{prefix}.fragments.tsv.gz"}
    wanted = set(chroms) if chroms else None
    with tempfile.TemporaryDirectory(prefix=".simulate-fastq.", dir=out) as scratch:
        # One pass over the FASTA: every chromosome's base codes on disk (memory-mapped below), and its length.
        genome = {seq.chrom: (seq.length, seq.codes_path)
                  for seq in iter_sequence_bins(fasta, bin_size=1 << 16, codes_dir=scratch)}
        summary = FastqSummary(str(paths["r1"]), str(paths["r2"]), str(paths["truth"]), [])
        with atomic_path(paths["r1"]) as t1, atomic_path(paths["r2"]) as t2, atomic_path(paths["truth"]) as tt, \
                _gzip_text(t1) as r1, _gzip_text(t2) as r2, _gzip_text(tt) as truth, \
                tqdm(unit=" fragments", desc="simulate", disable=not progress, total=max_fragments) as bar:
            loaded, sequence = None, None
            for chrom, starts, ends, counts in iter_fragment_chunks(fragments, chunk_lines):
                if wanted is not None and chrom not in wanted:
                    continue
                if chrom not in genome:
                    raise InputError(fragments, f"chromosome {chrom} is not in the FASTA {fasta}")
                if max_fragments is not None:
                    room = max_fragments - summary.fragments
                    starts, ends, counts = starts[:room], ends[:room], counts[:room]
                if chrom != loaded:
                    length, codes = genome[chrom]
                    sequence = CODE_TO_BASE[read_base_codes(codes)]  # one chromosome, ASCII
                    loaded = chrom
                    summary.chroms.append(chrom)
                summary.fragments += len(starts)
                bar.update(len(starts))
                mol_start, mol_end = fragment_molecules(starts, ends)
                ok = (mol_start >= 0) & (mol_end <= len(sequence))
                summary.off_edge += int((~ok).sum())
                starts, ends, counts, mol_start, mol_end = (a[ok] for a in (starts, ends, counts, mol_start, mol_end))
                truth.write("".join(f"{chrom}\t{s}\t{e}\t{prefix}\t{c}\n"
                                    for s, e, c in zip(starts.tolist(), ends.tolist(), counts.tolist())))
                mol_start, mol_end = np.repeat(mol_start, counts), np.repeat(mol_end, counts)
                n = len(mol_start)
                first_plus = rng.random(n) < 0.5
                reads1, reads2 = read_pairs(sequence, mol_start, mol_end, read_length, first_plus)
                qual1 = base_qualities(rng, reads1.shape, error_rate)
                qual2 = base_qualities(rng, reads2.shape, error_rate)
                if error_rate > 0:  # 0: exact reads (their qualities still fall along the read)
                    summary.substitutions += int(add_errors(rng, reads1, qual1).sum()
                                                 + add_errors(rng, reads2, qual2).sum())
                names = [f"{prefix}:{summary.pairs + i}" for i in range(n)]
                r1.write(_fastq_text(names, 1, reads1, qual1))
                r2.write(_fastq_text(names, 2, reads2, qual2))
                summary.pairs += n
                summary.read_through += int((mol_end - mol_start < read_length).sum())
                if max_fragments is not None and summary.fragments >= max_fragments:
                    break
        if summary.pairs == 0:
            for path in paths.values():
                path.unlink(missing_ok=True)
            raise InputError(fragments, "no fragments on the chromosomes asked for"
                             + (f" ({', '.join(sorted(wanted))})" if wanted else ""))
    log.info("%s: %s read pairs of %s at %s fragments on %d chromosomes (%s read through into the adapter, "
             "%s skipped at chromosome edges)", prefix, f"{summary.pairs:,}", f"{read_length} bp",
             f"{summary.fragments:,}", len(summary.chroms), f"{summary.read_through:,}", f"{summary.off_edge:,}")
    return summary
