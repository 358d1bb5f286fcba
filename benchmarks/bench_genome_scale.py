"""Whole-genome scale: wall time and peak RSS of denoise, bin, evaluate, report, qc and MACS3 on one long chromosome.

Input (synthetic, made here; a benchmark fixture, not data): chr1 of 250 Mb
(hg38's longest is 249 Mb) plus three shorter chromosomes (50, 30, 20 Mb),
insertions like an ATAC library: half in peaks (20 insertions at each peak
site, spread sd 80 bp), half uniform. The 5M-read density is that of the HSC
5M library (~1,300 insertions per Mb); the 0.5M-read input keeps each
insertion with p = 0.1 (the seed paper's way). The truth for ``evaluate`` is
the 5M input's 25 bp coverage (``atacdenoise bin``) and the peak sites +-250 bp.

Every step runs in its own process; its peak RSS is that process's
``ru_maxrss`` (``os.wait4``). ``denoise`` (bundled counts model,
registry/models/atac-denoiser-counts.onnx) runs on the 20 Mb chromosome
alone (``--chroms chr4``) and on everything, at each of ``--precisions``; ``evaluate`` (per base, of the
0.5M denoised tracks; 5M too with ``--evaluate 5M,0.5M``) on the 20 Mb
chromosome and on the 250 Mb one, so the table shows whether memory follows
chromosome length; ``report`` (with the truth) likewise, and ``qc`` on everything. MACS3 callpeak runs on
the same insertions. Timings on a shared machine are noisy. The bigWig writers alone: benchmarks/bench_bigwig_writer.py.

    python benchmarks/bench_genome_scale.py [--densities 5M,0.5M] [--threads 2] [--keep DIR] [--genome hg38]
        [--precisions float32,int8]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "registry" / "models" / "atac-denoiser-counts.onnx"
SIZES = {"chr1": 250_000_000, "chr2": 50_000_000, "chr3": 30_000_000, "chr4": 20_000_000}
# --genome hg38: hg38's 24 primary chromosomes (3.1 Gb), the issue's whole-genome setting.
HG38 = {"chr1": 248_956_422, "chr2": 242_193_529, "chr3": 198_295_559, "chr4": 190_214_555, "chr5": 181_538_259,
        "chr6": 170_805_979, "chr7": 159_345_973, "chr8": 145_138_636, "chr9": 138_394_717, "chr10": 133_797_422,
        "chr11": 135_086_622, "chr12": 133_275_309, "chr13": 114_364_328, "chr14": 107_043_718,
        "chr15": 101_991_189, "chr16": 90_338_345, "chr17": 83_257_441, "chr18": 80_373_285, "chr19": 58_617_616,
        "chr20": 64_444_167, "chr21": 46_709_983, "chr22": 50_818_468, "chrX": 156_040_895, "chrY": 57_227_415}
INSERTIONS_PER_MB = 1_300  # HSC 5M library
DENSITIES = {"5M": 1.0, "0.5M": 0.1}
PEAK_FLANK = 250
NOTE = """
What still grows with length: the bigWig writer keeps one 40-byte index entry per 1,024 bins written
(~5 MB per track for hg38; its zoom records wait in temporary files); evaluate keeps one
count per distinct peak score (exact AUPRC/AUROC), 20 bytes each, at most one per 25 bp bin. Inputs are read one
chromosome's insertions at a time (8 bytes each). Genome channels (models with --fasta/--annotation) are rendered
chunk by chunk like the counts; the counts model has none."""


def write_inputs(folder: Path, seed: int = 0) -> dict[str, Path]:
    """Insertions BEDs at every density, chrom sizes and the truth peaks (sites +-PEAK_FLANK)."""
    rng = np.random.default_rng(seed)
    (folder / "chrom.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in SIZES.items()))
    outs = {name: gzip.open(folder / f"ins_{name}.bed.gz", "wt", compresslevel=1) for name in DENSITIES}
    with open(folder / "truth_peaks.bed", "w") as peaks_out:
        for chrom, length in SIZES.items():
            n = INSERTIONS_PER_MB * length // 1_000_000
            sites = np.sort(rng.integers(PEAK_FLANK, length - PEAK_FLANK, n // 40))
            in_peaks = (np.repeat(sites, 20) + rng.normal(0, 80, len(sites) * 20)).astype(np.int64)
            positions = np.sort(np.clip(np.concatenate([rng.integers(0, length, n - len(in_peaks)), in_peaks]),
                                        0, length - 1))
            keep = rng.random(len(positions))
            for name, p in DENSITIES.items():
                outs[name].write("".join(f"{chrom}\t{x}\t{x + 1}\t.\t0\t+\n" for x in positions[keep < p].tolist()))
            peaks_out.write("".join(f"{chrom}\t{s - PEAK_FLANK}\t{s + PEAK_FLANK}\n" for s in sites.tolist()))
    for out in outs.values():
        out.close()
    return {"sizes": folder / "chrom.sizes", "truth_peaks": folder / "truth_peaks.bed",
            **{name: folder / f"ins_{name}.bed.gz" for name in DENSITIES}}


def measure(command: list[str], log: Path) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, peak RSS in MB of that process and its children)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "pyscripts") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = (log.read_text().strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{' '.join(command[:4])} ... failed: {tail}")
    return seconds, usage.ru_maxrss / 1024


def atacdenoise(*args: str) -> list[str]:
    return [sys.executable, "-m", "atacdenoise.cli", *map(str, args)]


def size_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths) / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--densities", default="5M,0.5M", help=f"comma-separated, of {', '.join(DENSITIES)}")
    parser.add_argument("--evaluate", default="0.5M", help="densities whose denoised tracks are evaluated")
    parser.add_argument("--model", type=Path, default=MODEL, help=f"the model denoise runs (default {MODEL.name})")
    parser.add_argument("--denoise-args", default="", help="more options for every denoise row (e.g. --no-peakprob)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precisions", default="float32,int8",
                        help="denoise --precision of each denoise row (evaluate/report read the last one's tracks)")
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    parser.add_argument("--genome", choices=["four", "hg38"], default="four",
                        help="four: chr1 250 Mb + 50, 30, 20 Mb (default); hg38: its 24 chromosomes, 3.1 Gb")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply chromosome lengths (a quick smoke run)")
    args = parser.parse_args(argv)
    if args.genome == "hg38":
        SIZES.clear()
        SIZES.update(HG38)
    if args.scale != 1.0:
        SIZES.update({c: int(n * args.scale) for c, n in SIZES.items()})
    densities = [d for d in args.densities.split(",") if d]
    evaluate_at = set(args.evaluate.split(","))
    precisions = args.precisions.split(",")
    work = args.keep or Path(tempfile.mkdtemp(prefix="genome-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []

    def row(step, density, scope, seconds, rss, output=""):
        rows.append((step, density, scope, f"{seconds:.1f}", f"{rss:,.0f}", output))
        print(f"{step} {density} {scope}: {seconds:.1f} s, {rss:,.0f} MB {output}", file=sys.stderr, flush=True)

    try:
        started = time.perf_counter()
        inputs = write_inputs(work)
        print(f"inputs written in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        total_mb = sum(SIZES.values()) / 1e6
        scopes = {f"chr4 ({SIZES['chr4'] / 1e6:.0f} Mb)": ["--chroms", "chr4"],
                  f"chr1 ({SIZES['chr1'] / 1e6:.0f} Mb)": ["--chroms", "chr1"],
                  f"all ({total_mb:.0f} Mb)": []}
        # Truth: the 5M input binned at 25 bp.
        seconds, rss = measure(atacdenoise("bin", "--input", inputs["5M"], "--chrom-sizes", inputs["sizes"],
                                           "--out-prefix", work / "truth"), work / "bin.log")
        row("bin (25 bp bigWig + store)", "5M", f"all ({total_mb:.0f} Mb)", seconds, rss,
            f"{size_mb(work / 'truth.bw'):.0f} MB bigWig")
        for density in densities:
            n_insertions = sum(1 for _ in gzip.open(inputs[density], "rt"))
            label = f"{density} ({n_insertions:,} ins.)"
            for precision in precisions:
                for scope, chroms in [list(scopes.items())[i] for i in (0, 2)]:  # chr4 alone, then everything
                    prefix = work / f"dn_{density}_{precision}_{scope.split()[0]}"
                    seconds, rss = measure(atacdenoise("denoise", "--input", inputs[density], "--chrom-sizes",
                                                       inputs["sizes"], "--model", args.model, "--out-prefix", prefix,
                                                       "--genome", "hg19", "--threads", args.threads, "--precision",
                                                       precision, "--quiet", *chroms, *shlex.split(args.denoise_args)),
                                           work / "denoise.log")
                    tracks = [path for path in (Path(f"{prefix}.denoised.bw"), Path(f"{prefix}.peakprob.bw"))
                              if path.exists()]
                    row(f"denoise ({precision}{', ' + args.denoise_args if args.denoise_args else ''})", label, scope,
                        seconds, rss, f"{size_mb(*tracks):.0f} MB bigWigs")
            prefix = work / f"dn_{density}_{precisions[-1]}_all"
            for scope, chroms in list(scopes.items())[:2] if density in evaluate_at else []:
                seconds, rss = measure(atacdenoise("evaluate", "--prediction", f"{prefix}.denoised.bw", "--truth",
                                                   work / "truth.bw", "--peakprob", f"{prefix}.peakprob.bw",
                                                   "--peaks", f"{prefix}.peaks.narrowPeak", "--truth-peaks",
                                                   inputs["truth_peaks"], "--json", *chroms), work / "evaluate.log")
                row("evaluate (per base)", label, scope, seconds, rss)
                seconds, rss = measure(atacdenoise("report", "--denoised", f"{prefix}.denoised.bw", "--peakprob",
                                                   f"{prefix}.peakprob.bw", "--peaks", f"{prefix}.peaks.narrowPeak",
                                                   "--noisy", inputs[density], "--chrom-sizes", inputs["sizes"],
                                                   "--truth", work / "truth.bw", "--truth-peaks",
                                                   inputs["truth_peaks"], "--output", work / "report.html",
                                                   "--quiet", *chroms), work / "report.log")
                row("report (with truth)", label, scope, seconds, rss)
            if density in evaluate_at:
                seconds, rss = measure(atacdenoise("qc", "--input", inputs[density], "--chrom-sizes", inputs["sizes"],
                                                   "--peaks", f"{prefix}.peaks.narrowPeak", "--out-prefix",
                                                   work / f"qc_{density}", "--quiet"), work / "qc.log")
                row("qc", label, f"all ({total_mb:.0f} Mb)", seconds, rss)
            if shutil.which("macs3"):
                outdir = work / f"macs3_{density}"
                seconds, rss = measure(["macs3", "callpeak", "-t", str(inputs[density]), "-f", "BED", "-g",
                                        str(sum(SIZES.values())), "--nomodel", "--shift", "-100", "--extsize", "200",
                                        "--keep-dup", "all", "-n", "x", "--outdir", str(outdir)], work / "macs3.log")
                row("MACS3 callpeak", label, f"all ({total_mb:.0f} Mb)", seconds, rss,
                    f"{size_mb(*outdir.iterdir()):.1f} MB")
            else:
                rows.append(("MACS3 callpeak", label, "-", "not installed", "-", ""))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"Synthetic genome: {', '.join(f'{c} {n // 1_000_000} Mb' for c, n in SIZES.items())}; "
          f"model {args.model.name}, {args.threads} ONNX Runtime threads; one process per step, peak RSS = its "
          f"ru_maxrss. The machine is shared (2 cores): times are noisy, RSS is not.\n")
    print("| step | input | chromosomes | wall s | peak RSS MB | output |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
