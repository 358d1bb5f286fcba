"""Reads to an analysis-ready BAM: cutadapt -> bowtie2 -> samtools fixmate/sort/markdup -> index.

This is the ALIGN step of the pipeline. The BAM it writes is what every later
step expects: coordinate-sorted, indexed, duplicates flagged (not removed, the
read filter drops them), one read group named after the sample.

ATAC-seq settings: ``--very-sensitive`` and fragments up to 2 kb (``-X 2000``)
so di- and tri-nucleosomal pairs still align as proper pairs. Reads are first
trimmed of the Nextera adapter (cutadapt, streamed into bowtie2 as interleaved
pairs, as nf-core/atacseq trims with Trim Galore): a fragment shorter than the
read is read through into the adapter, and bowtie2's end-to-end mode would
otherwise lose it. Only the 3' end is trimmed, so the reads' 5' ends (the Tn5
insertions) stay where they were; as Trim Galore's default (stringency 1), even one
adapter base at the end is trimmed: left there, it makes the mates of a fragment
just shorter than the read overhang each other, and bowtie2 calls such a pair
discordant.

The bowtie2 index is either given (``index``: a prefix or a folder holding
one) or built from ``fasta`` first. Building is slow for a real genome, so the
pipeline builds it once (:func:`build_index`) and hands the folder to every
sample.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path

# bowtie2 settings for ATAC-seq (as nf-core/atacseq and ENCODE use).
BOWTIE2_ATAC_ARGS = ("--very-sensitive", "-X", "2000")
INDEX_SUFFIXES = (".1.bt2", ".1.bt2l")
# The Nextera/Tn5 mosaic end that both reads of an ATAC fragment read into when it is shorter than the read.
NEXTERA_ADAPTER = "CTGTCTCTTATACACATCT"
MIN_TRIMMED_LENGTH = 15  # shorter reads (and their mates) are dropped after trimming


@dataclass
class AlignmentSummary:
    bam: str
    index: str
    alignment_rate: float  # percent, bowtie2's "overall alignment rate"
    duplicates: int        # reads flagged as duplicates by samtools markdup


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise InputError(None, f"{name} is not installed or not on PATH (needed for alignment)")
    return path


def _require_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{what} does not exist")
    if path.stat().st_size == 0:
        raise InputError(path, f"{what} is empty")
    return path


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


# ---------------------------------------------------------------- index

def find_index_prefix(index: str | os.PathLike) -> str:
    """The bowtie2 index prefix for ``index``: itself, or the one prefix inside a folder."""
    index = Path(index)
    if any(Path(f"{index}{s}").exists() for s in INDEX_SUFFIXES):
        return str(index)
    if index.is_dir():
        prefixes = sorted({str(p)[: -len(s)] for s in INDEX_SUFFIXES for p in index.glob(f"*{s}")
                           if not p.name.endswith(".rev" + s)})
        if len(prefixes) == 1:
            return prefixes[0]
        if len(prefixes) > 1:
            raise InputError(index, f"folder holds several bowtie2 indexes ({', '.join(map(os.path.basename, prefixes))})")
    raise InputError(index, "no bowtie2 index found (expected PREFIX.1.bt2 or a folder holding one)")


def build_index(fasta: str | os.PathLike, index_dir: str | os.PathLike, threads: int = 1) -> str:
    """Build a bowtie2 index of ``fasta`` in ``index_dir`` (atomically); return its prefix."""
    fasta = _require_file(fasta, "genome FASTA")
    _require_tool("bowtie2-build")
    name = re.sub(r"(\.gz)?$", "", fasta.name)
    name = re.sub(r"\.(fa|fasta|fna)$", "", name) or "genome"
    with atomic_path(index_dir) as tmp:
        tmp.mkdir()
        result = subprocess.run(["bowtie2-build", "--threads", str(threads), str(fasta), str(tmp / name)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise InputError(fasta, f"bowtie2-build failed: {_last_line(result.stderr)}")
    return str(Path(index_dir) / name)


# ---------------------------------------------------------------- alignment

def _pipeline_command(prefix: str, fastq1: Path, fastq2: Path | None, sample: str, threads: int,
                      out_bam: Path, workdir: Path, adapter: str | None = NEXTERA_ADAPTER) -> str:
    """One bash pipeline: trim, align, add mate tags, sort, flag duplicates. Logs go to ``workdir``."""
    q = shlex.quote
    trim = ""
    if adapter:
        mates = f"-A {q(adapter)} --interleaved {q(str(fastq1))} {q(str(fastq2))}" if fastq2 else q(str(fastq1))
        trim = (f"cutadapt -j {threads} -a {q(adapter)} {mates} --overlap 1 --minimum-length {MIN_TRIMMED_LENGTH} "
                f"--quality-base 33 -o - 2> {q(str(workdir / 'cutadapt.log'))} | ")
        reads = "--interleaved -" if fastq2 else "-U -"
    else:
        reads = f"-1 {q(str(fastq1))} -2 {q(str(fastq2))}" if fastq2 else f"-U {q(str(fastq1))}"
    bowtie2 = (f"{trim}bowtie2 -p {threads} {' '.join(BOWTIE2_ATAC_ARGS)} --rg-id {q(sample)} --rg SM:{q(sample)} "
               f"-x {q(prefix)} {reads} 2> {q(str(workdir / 'bowtie2.log'))}")
    # fixmate -m adds the mate-score tags markdup needs; it wants name-grouped input, which bowtie2 writes.
    fixmate = f"samtools fixmate -m -u - - 2> {q(str(workdir / 'fixmate.log'))}"
    sort = (f"samtools sort -u -@ {threads} -T {q(str(workdir / 'sort'))} - "
            f"2> {q(str(workdir / 'sort.log'))}")
    markdup = (f"samtools markdup -@ {threads} -s -f {q(str(workdir / 'markdup.txt'))} - {q(str(out_bam))} "
               f"2> {q(str(workdir / 'markdup.log'))}")
    return f"set -o pipefail; {bowtie2} | {fixmate} | {sort} | {markdup}"


def _explain_failure(workdir: Path, fastq1: Path) -> InputError:
    """The first tool in the pipe that complained, with its last message line."""
    for tool in ("cutadapt", "bowtie2", "fixmate", "sort", "markdup"):
        log = workdir / f"{tool}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        if "error" in text.lower() or "(ERR)" in text or "exit" in text.lower():
            return InputError(fastq1, f"{tool} failed: {_last_line(text)}")
    return InputError(fastq1, "alignment failed (see bowtie2/samtools messages above)")


def _alignment_rate(bowtie2_log: str) -> float:
    match = re.search(r"([\d.]+)% overall alignment rate", bowtie2_log)
    return float(match.group(1)) if match else 0.0


def _duplicates(markdup_stats: str) -> int:
    """Reads flagged as duplicates (markdup's ``DUPLICATE TOTAL``, counted in reads)."""
    match = re.search(r"^DUPLICATE TOTAL:\s+(\d+)$", markdup_stats, flags=re.M)
    return int(match.group(1)) if match else 0


def align(
    fastq1: str | os.PathLike,
    output: str | os.PathLike,
    fastq2: str | os.PathLike | None = None,
    fasta: str | os.PathLike | None = None,
    index: str | os.PathLike | None = None,
    threads: int = 1,
    sample: str | None = None,
    adapter: str | None = NEXTERA_ADAPTER,
) -> AlignmentSummary:
    """Align a FASTQ pair (or single FASTQ) to a sorted, duplicate-marked, indexed BAM.

    Give ``index`` (bowtie2 prefix or folder) or ``fasta`` (an index is built in a
    temporary folder and removed afterwards). ``adapter`` is trimmed from the reads'
    3' ends first (cutadapt); ``None`` aligns the reads as they are. ``output`` and
    ``output.bai`` are written atomically; the index is renamed last so it is newer than the BAM.
    """
    if adapter is not None and not re.fullmatch(r"[ACGTacgt]{3,}", adapter):
        raise InputError(None, f"adapter must be a DNA sequence of at least 3 bases, got {adapter!r}")
    fastq1 = _require_file(fastq1, "FASTQ (read 1)")
    fastq2 = _require_file(fastq2, "FASTQ (read 2)") if fastq2 else None
    if index is None and fasta is None:
        raise InputError(None, "give a bowtie2 index (--index) or a genome FASTA (--fasta) to build one from")
    for tool in ("bowtie2", "samtools") + (("cutadapt",) if adapter else ()):
        _require_tool(tool)
    output = Path(output)
    sample = sample or re.sub(r"\.bam$", "", output.name)
    threads = max(1, int(threads))

    with tempfile.TemporaryDirectory(prefix=".align.", dir=output.parent if output.parent.exists() else None) as tmp:
        workdir = Path(tmp)
        prefix = find_index_prefix(index) if index is not None else build_index(fasta, workdir / "index", threads)
        with atomic_path(f"{output}.bai") as tmp_bai:
            with atomic_path(output) as tmp_bam:
                command = _pipeline_command(prefix, fastq1, fastq2, sample, threads, tmp_bam, workdir, adapter)
                if subprocess.run(["bash", "-c", command]).returncode != 0:
                    raise _explain_failure(workdir, fastq1)
                indexed = subprocess.run(["samtools", "index", "-@", str(threads), str(tmp_bam), "-o", str(tmp_bai)],
                                         capture_output=True, text=True)
                if indexed.returncode != 0:
                    raise InputError(output, f"samtools index failed: {_last_line(indexed.stderr)}")
        bowtie2_log = (workdir / "bowtie2.log").read_text(errors="replace")
        stats = (workdir / "markdup.txt").read_text(errors="replace")
    return AlignmentSummary(str(output), f"{output}.bai", _alignment_rate(bowtie2_log), _duplicates(stats))
