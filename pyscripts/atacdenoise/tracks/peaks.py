"""Peak calling with the real MACS3, ATAC settings.

Two modes:

- ``insertions`` (default, any input): our reader applies the read filter and
  the Tn5 shift, the insertions go to a temporary BED, and MACS3 runs
  ``-f BED --nomodel --shift -100 --extsize 200 --keep-dup all``: every
  insertion becomes a 200 bp interval centred on the cut site (the ENCODE /
  nf-core ATAC recipe). Every input format is treated the same way and the
  filter is ours, so peaks agree with the binned tracks.
- ``bampe`` (paired-end BAM only): the reads passing our filter are copied to a
  temporary BAM and MACS3 runs ``-f BAMPE --keep-dup all``, piling up whole
  fragments. This is closer to what some pipelines do, but ignores the Tn5
  shift and mixes nucleosomal fragments into the signal.

``-g`` is the sum of the kept chromosome sizes unless ``genome_size`` is given
(a number, or MACS3's shortcuts ``hs``, ``mm``, ``ce``, ``dm``). The seed called
peaks with a low threshold (``low_threshold=True`` -> ``-p 0.01``); otherwise
``-q qvalue``. ``-B --SPMR`` gives the signal pileup, written as a bigWig.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyBigWig

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path, atomic_set, filesystem_full, no_space_left, require_space
from atacdenoise.io.narrowpeak import overlaps_blacklist, read_blacklist

log = logging.getLogger(__name__)

MODES = ("insertions", "bampe")
GENOME_SHORTCUTS = ("hs", "mm", "ce", "dm")
STDERR_LINES_SHOWN = 8
LIBBIGWIG_MARGIN = 64 * 1024  # bytes libBigWig may hold back (its 32 KiB block buffer, stdio's) beyond those given


def call_peaks(
    input_path: str | os.PathLike,
    output_prefix: str | os.PathLike,
    chrom_sizes: dict[str, int],
    genome_size: int | str | None = None,
    fmt: str = "auto",
    low_threshold: bool = False,
    qvalue: float = 0.05,
    read_filter=None,
    mode: str = "insertions",
    blacklist: str | os.PathLike | None = None,
) -> dict[str, str]:
    """Write ``{prefix}.narrowPeak``, its bigBed ``{prefix}.bb`` (when there are peaks) and ``{prefix}.signal.bw``
    (MACS3 pileup); return the paths. ``blacklist``: a BED whose regions no kept peak may overlap."""
    from atacdenoise.io.bigbed import write_narrowpeak_bigbed
    from atacdenoise.io.reads import ReadFilter, detect_format

    macs3 = shutil.which("macs3")
    if macs3 is None:
        raise InputError(None, "macs3 not found on PATH; peak calling needs the [peaks] extra: "
                               "pip install 'atacdenoise[peaks]' (MACS3 has no wheel: it compiles for a few minutes)")
    if mode not in MODES:
        raise InputError(None, f"unknown peak-calling mode {mode!r}; choose one of {', '.join(MODES)}")
    rf = read_filter or ReadFilter()
    fmt = detect_format(input_path) if fmt == "auto" else fmt
    if fmt == "bigwig":
        raise InputError(input_path, "peak calling needs reads or insertions, not a bigWig track")
    if mode == "bampe" and fmt != "bam":
        raise InputError(input_path, "mode 'bampe' needs a paired-end BAM")
    kept_sizes = {c: n for c, n in chrom_sizes.items() if c not in rf.exclude_chroms}
    bad_regions = read_blacklist(blacklist, chrom_sizes) if blacklist else None  # read before minutes of MACS3
    gsize = _genome_size_arg(genome_size, kept_sizes)

    outputs = {"narrowpeak": f"{output_prefix}.narrowPeak", "signal": f"{output_prefix}.signal.bw"}
    with tempfile.TemporaryDirectory(prefix="atacdenoise-macs3.") as work:
        work = Path(work)
        if mode == "bampe":
            n_reads = _write_filtered_bam(input_path, work / "reads.bam", kept_sizes, rf)
            macs_input = ["-t", str(work / "reads.bam"), "-f", "BAMPE"]
        else:
            n_reads = _write_macs_bed(input_path, work / "insertions.bed", kept_sizes, fmt, rf)
            macs_input = ["-t", str(work / "insertions.bed"), "-f", "BED",
                          "--nomodel", "--shift", "-100", "--extsize", "200"]
        if n_reads == 0:  # MACS3 refuses empty input; no reads simply means no peaks
            (work / "macs_peaks.narrowPeak").write_text("")
            (work / "macs_treat_pileup.bdg").write_text("")
        else:
            threshold = ["-p", "0.01"] if low_threshold else ["-q", str(qvalue)]
            _run_macs3([macs3, "callpeak", *macs_input, "-g", gsize, "--keep-dup", "all", "-B", "--SPMR",
                        *threshold, "--outdir", str(work), "--tempdir", str(work), "-n", "macs"])
        with atomic_set() as temporary:  # both files of this run or neither
            dropped = _write_clipped_narrowpeak(work / "macs_peaks.narrowPeak", temporary(outputs["narrowpeak"]),
                                                chrom_sizes, bad_regions)
            _bedgraph_to_bigwig(work / "macs_treat_pileup.bdg", temporary(outputs["signal"]), chrom_sizes)
    if blacklist:
        log.info("%s: %d peaks overlap the blacklist and were dropped", outputs["narrowpeak"], dropped)
    bigbed = write_narrowpeak_bigbed(outputs["narrowpeak"], chrom_sizes)
    if bigbed is not None:
        outputs["bigbed"] = str(bigbed)
    return outputs


def _genome_size_arg(genome_size: int | str | None, sizes: dict[str, int]) -> str:
    """MACS3 ``-g``: the effective genome size; by default all of the chromosomes we keep."""
    if genome_size is None:
        return str(sum(sizes.values()))
    text = str(genome_size).strip()
    if text in GENOME_SHORTCUTS:
        return text
    try:
        value = float(text)  # accepts 2.7e9 as well as 2700000000
    except ValueError:
        value = 0
    if value <= 0:
        raise InputError(None, f"genome size {genome_size!r} is neither a positive number nor one of "
                               f"{', '.join(GENOME_SHORTCUTS)}")
    return str(int(value))


def _write_macs_bed(input_path, bed_path: Path, sizes: dict[str, int], fmt: str, rf) -> int:
    """Filtered, shifted insertions as BED6, which ``--shift -100 --extsize 200`` centres."""
    from atacdenoise.io.reads import iter_insertions, write_insertions_bed

    return write_insertions_bed(bed_path, iter_insertions(input_path, sizes, fmt, rf))


def _write_filtered_bam(input_path, bam_path: Path, sizes: dict[str, int], rf) -> int:
    """Copy the records passing ``rf`` (flags, MAPQ, kept chromosomes) for MACS3's BAMPE mode."""
    import pysam

    from atacdenoise.io.chromsizes import check_shared_chroms

    drop = 0x4 | (0 if rf.keep_secondary else 0x100) | (0 if rf.keep_qcfail else 0x200) \
        | (0 if rf.keep_duplicates else 0x400) | (0 if rf.keep_supplementary else 0x800)
    try:
        source = pysam.AlignmentFile(str(input_path), "rb")
    except (ValueError, OSError) as err:
        raise InputError(input_path, f"not a readable BAM file ({err})") from None
    n = 0
    with source, pysam.AlignmentFile(str(bam_path), "wb", template=source) as out:
        check_shared_chroms(input_path, source.references, sizes)
        if not any(r.is_paired for r in source.head(1000)):
            raise InputError(input_path, "mode 'bampe' needs paired-end reads; this BAM is single-end")
        for chrom in source.references:
            if chrom not in sizes:
                continue
            for read in source.fetch(chrom):
                if (read.flag & drop or read.mapping_quality < rf.min_mapq
                        or not (read.is_proper_pair or rf.keep_improper_pairs)):
                    continue
                out.write(read)
                n += 1
    return n


def _run_macs3(command: list[str]) -> None:
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        tail = "\n".join(run.stderr.strip().splitlines()[-STDERR_LINES_SHOWN:])
        raise InputError(None, f"macs3 callpeak failed (exit {run.returncode}):\n{tail}")


def _write_clipped_narrowpeak(macs_path: Path, path: str, sizes: dict[str, int], blacklist: dict | None = None) -> int:
    """MACS3's peaks as genome browsers take them: clipped to the chromosome ends (MACS3 does not know them from
    BED input), unknown contigs and peaks on the blacklist dropped, sorted by chromosome (chrom sizes order) and
    start, and the score column capped at 1000 as the narrowPeak format requires (ENCODE's way; MACS3's
    int(-10 log10 q) reaches 40,000+, and the p and q values keep their own columns). ``blacklist``: each
    chromosome's blacklisted union (``read_blacklist``). Returns how many peaks the blacklist dropped."""
    order = {chrom: i for i, chrom in enumerate(sizes)}
    bad = blacklist or {}
    rows, dropped = [], 0
    for line in macs_path.read_text().splitlines():
        fields = line.split("\t")
        if fields[0] not in sizes:
            continue
        start, end = int(fields[1]), min(int(fields[2]), sizes[fields[0]])
        if end > start and overlaps_blacklist(fields[0], [start], [end], bad)[0]:
            dropped += 1
        elif end > start:
            fields[2], fields[4] = str(end), str(min(int(fields[4]), 1000))
            rows.append((order[fields[0]], start, "\t".join(fields) + "\n"))
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line for _, _, line in sorted(rows)))
    return dropped


def _bedgraph_blocks(path: Path) -> dict[str, tuple[int, int]]:
    """Byte range of each chromosome's lines (MACS3 writes each chromosome in one run)."""
    blocks: dict[str, tuple[int, int]] = {}
    offset, current, start = 0, None, 0
    with open(path, "rb") as fh:
        for line in fh:
            chrom = line.split(b"\t", 1)[0].decode()
            if chrom != current:
                if current is not None:
                    blocks[current] = (start, offset)
                current, start = chrom, offset
            offset += len(line)
    if current is not None:
        blocks[current] = (start, offset)
    return blocks


def _bedgraph_to_bigwig(bdg_path: Path, path: str, sizes: dict[str, int]) -> None:
    """Write the pileup per chromosome in chrom-sizes order (bigWig needs header order), clipped to the ends."""
    blocks = _bedgraph_blocks(bdg_path)
    with atomic_path(path) as tmp, open(bdg_path, "rb") as fh:
        bw = pyBigWig.open(str(tmp), "w")
        try:
            bw.addHeader(list(sizes.items()))
            for chrom, length in sizes.items():
                if chrom not in blocks:
                    continue
                first, last = blocks[chrom]
                fh.seek(first)
                fields = fh.read(last - first).split()
                starts = np.array(fields[1::4]).astype(np.int64)
                ends = np.minimum(np.array(fields[2::4]).astype(np.int64), length)
                values = np.array(fields[3::4]).astype(np.float64)
                order = np.argsort(starts, kind="stable")
                starts, ends, values = starts[order], ends[order], values[order]
                keep = (ends > starts) & (values != 0)
                if keep.any():
                    require_space(path, 12 * int(keep.sum()) + LIBBIGWIG_MARGIN)
                    bw.addEntries([chrom] * int(keep.sum()), starts[keep].tolist(), ends=ends[keep].tolist(),
                                  values=values[keep].tolist())
        finally:
            bw.close()
        if filesystem_full(tmp.parent):  # libBigWig ignores failed writes
            raise no_space_left(path)
