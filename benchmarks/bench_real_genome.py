"""Benchmark: the real yeast genome end to end; prints a markdown table.

Reads are made at every fragment of ../shared/data/yeast/fragments.tsv.gz on the
S288C genome (`atacdenoise simulate --fragments F --fasta G`: 50 bp, Nextera
read-through, mean substitution rate 0.2 %), then one samplesheet row goes through
`atacdenoise pipeline --samplesheet` (BOWTIE2_BUILD, ALIGN with cutadapt +
bowtie2, FILTER_SHIFT, CALL_PEAKS, BIN, SUBSAMPLE 10 %, the shallow twin's
peaks, QC, DENOISE with the bundled sacCer3 model, REPORT). Reported: the time
of every step (each step's own log records it) and how many insertions come
back at exactly the fragments file's positions (evaluate/recovery.py):
over fragments in uniquely mappable sequence (both molecule ends' 32-mers occur
once in the genome, either strand), over all distinct nuclear fragments, and
the insertions that came back anywhere else.

    python benchmarks/bench_real_genome.py                       # the whole library: ~10 min on 2 cores
    python benchmarks/bench_real_genome.py --max-fragments 50000 # a quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "yeast"


def step_name(log_stem: str) -> str:
    """``02_align.yeast`` -> ``ALIGN (yeast)``."""
    step, _, sample = log_stem.split("_", 1)[1].partition(".")
    return step.upper() + (f" ({sample})" if sample else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="the yeast folder of ../shared/data")
    parser.add_argument("--max-fragments", type=int, help="only the first N fragment lines (default: all)")
    parser.add_argument("--work", help="keep the run here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not (data / "fragments.tsv.gz").exists():
        print(f"no yeast data at {data}: nothing measured")
        return 0
    sys.path.insert(0, str(HERE.parent / "pyscripts"))
    from atacdenoise.evaluate.recovery import insertion_recovery
    from atacdenoise.pipeline import SampleSettings, run_samplesheet
    from atacdenoise.tracks.simulate import simulate_fastq

    load = os.getloadavg()[0]  # the CPU may be shared: say how busy it was
    with tempfile.TemporaryDirectory(prefix="bench_real_genome.") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.time()
        reads = simulate_fastq(data / "fragments.tsv.gz", data / "genome.fa.gz", work / "reads", prefix="yeast",
                               max_fragments=args.max_fragments, seed=0, progress=False)
        simulate_s = time.time() - started
        sheet = work / "sheet.csv"
        sheet.write_text(f"sample,fastq_1,fastq_2,bam\nyeast,{reads.r1},{reads.r2},\n")
        started = time.time()
        out = run_samplesheet(work / "out", sheet, SampleSettings(fasta=str(data / "genome.fa.gz"),
                                                                  gtf=str(data / "genes.gff3.gz"),
                                                                  threads=args.threads), force=True)
        pipeline_s = time.time() - started
        started = time.time()
        r = insertion_recovery(reads.truth, out / "filter_shift" / "yeast.insertions.bed.gz", data / "chrom.sizes",
                               fasta=data / "genome.fa.gz")
        recovery_s = time.time() - started
        steps = [(step_name(log.stem), float(log.read_text().split()[0])) for log in sorted((out / "logs").glob("*.done"))]

    print(f"{reads.fragments:,} fragment lines ({'all' if args.max_fragments is None else 'the first'}) of "
          f"{len(reads.chroms)} chromosomes -> {reads.pairs:,} read pairs of 50 bp "
          f"({reads.read_through:,} read through into the adapter, {reads.off_edge:,} skipped at chromosome ends), "
          f"{args.threads} threads; load average {load:.1f} at the start on {os.cpu_count()} cores.\n")
    print("| step | seconds |\n| --- | --- |")
    print(f"| SIMULATE (FASTQ from fragments + FASTA) | {simulate_s:.1f} |")
    for name, seconds in steps:
        print(f"| {name} | {seconds:.1f} |")
    print(f"| whole pipeline (runner's wall time) | {pipeline_s:.1f} |")
    print(f"| recovery check (32-mer mappability + comparison) | {recovery_s:.1f} |\n")
    print("| insertions at exactly the fragments file's positions | fragments | recovered | rate |\n| --- | --- | --- | --- |")
    print(f"| uniquely mappable fragments (both 32-mer ends unique), chrM excluded | {r.mappable:,} | "
          f"{r.mappable_recovered:,} | {r.mappable_rate:.2%} |")
    print(f"| all distinct nuclear fragments | {r.fragments:,} | {r.fragments_recovered:,} | {r.fragment_rate:.2%} |")
    print(f"| insertions (2 per distinct fragment) | {r.insertions_expected:,} | {r.insertions_matched:,} | "
          f"{r.insertion_rate:.2%} |")
    print(f"\nInsertions that came back anywhere else: {r.misplaced:,} of {r.insertions_observed:,}. Fragments lost "
          "are those the read filter drops by design: MAPQ < 30 in repeats (subtelomeres, Ty elements, the chrXII "
          "rDNA) and duplicates of one another.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
