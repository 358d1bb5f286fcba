"""A real genome end to end: reads made at the real yeast library's fragments go through the local runner's
samplesheet mode with --train (BOWTIE2_BUILD, ALIGN, FILTER_SHIFT, ..., WINDOWS, NASH_SEARCH, EXPORT_ONNX,
REGISTER_MODEL, PROMOTE, DENOISE with @champion, QC, REPORT) and the insertions come back exactly.

Uses ``../shared/data/yeast`` (skipped without it). To stay near a minute on a 2-core machine it takes a
subset: the smallest nuclear chromosomes the fragments file holds, until at least 20,000 fragments (on the
files as shipped: ~21,600 fragments of three chromosomes), aligned against the whole genome (the index build
is ~20 s of it). ``benchmarks/bench_real_genome.py`` runs the whole library.
"""

from __future__ import annotations

import gzip
import shutil
import time
from collections import Counter

import pytest

pytestmark = [pytest.mark.realdata, pytest.mark.slow,
              pytest.mark.skipif(not all(shutil.which(t) for t in ("bowtie2", "samtools", "cutadapt", "macs3")),
                                 reason="bowtie2, samtools, cutadapt and macs3 are needed")]

MIN_FRAGMENTS = 20_000


def subset_chromosomes(yeast) -> list[str]:
    """The smallest nuclear chromosomes with fragments, until they hold ``MIN_FRAGMENTS``."""
    from atacdenoise.io.chromsizes import read_chrom_sizes

    sizes = read_chrom_sizes(yeast / "chrom.sizes")
    with gzip.open(yeast / "fragments.tsv.gz", "rt") as fh:
        per_chrom = Counter(line.split("\t", 1)[0] for line in fh)
    chosen, total = [], 0
    for chrom in sorted((c for c in per_chrom if c in sizes and c not in ("chrM", "MT", "M")), key=sizes.get):
        chosen.append(chrom)
        total += per_chrom[chrom]
        if total >= MIN_FRAGMENTS:
            break
    return chosen


def test_simulated_reads_of_real_fragments_come_back_at_their_exact_insertions(shared_data, tmp_path, monkeypatch):
    from atacdenoise.evaluate.recovery import insertion_recovery
    from atacdenoise.pipeline import SampleSettings, run_samplesheet
    from atacdenoise.tracks.simulate import simulate_fastq

    yeast = shared_data / "yeast"
    started = time.time()
    reads = simulate_fastq(yeast / "fragments.tsv.gz", yeast / "genome.fa.gz", tmp_path / "reads", prefix="yeast",
                           chroms=subset_chromosomes(yeast), max_fragments=50_000, seed=0)
    assert reads.pairs >= MIN_FRAGMENTS and reads.read_through > 0
    monkeypatch.chdir(tmp_path)  # relative samplesheet paths resolve against the launch folder
    (tmp_path / "sheet.csv").write_text("sample,fastq_1,fastq_2,bam\n"
                                        "yeast,reads/yeast_R1.fastq.gz,reads/yeast_R2.fastq.gz,\n")
    out = run_samplesheet(tmp_path / "out", "sheet.csv",
                          SampleSettings(fasta=str(yeast / "genome.fa.gz"), gtf=str(yeast / "genes.gff3.gz"),
                                         threads=2, train=True))
    elapsed = time.time() - started
    r = insertion_recovery(reads.truth, out / "filter_shift" / "yeast.insertions.bed.gz", yeast / "chrom.sizes",
                           fasta=yeast / "genome.fa.gz")
    print(f"{reads.pairs:,} pairs on {', '.join(reads.chroms)}: pipeline {elapsed:.0f} s; "
          f"{r.mappable_rate:.2%} of {r.mappable:,} uniquely mappable fragments exact, "
          f"{r.fragment_rate:.2%} of all {r.fragments:,}; {r.misplaced} insertions elsewhere")
    assert r.mappable > 0.7 * r.fragments
    assert r.mappable_rate >= 0.99, r.as_dict()
    assert r.misplaced <= 0.001 * r.insertions_observed, r.as_dict()   # what comes back, comes back exactly
    assert (out / "report" / "yeast.shallow.report.html").stat().st_size > 0
    assert (out / "qc" / "yeast.qc.json").exists()
    # The model that denoised is the one this run trained on the sample, registered and promoted.
    assert "models:/atac-denoiser@champion" in (out / "denoise" / "yeast.shallow.provenance.json").read_text()
    assert (out / "nash_search" / "best_model.json").exists() and (out / "export_onnx" / "model.onnx").exists()
    assert list((out / "logs").glob("*promote.done"))
