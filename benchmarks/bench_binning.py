"""Benchmark: BAM -> 25 bp coverage bigWig, atacdenoise vs deepTools bamCoverage.

What it does:

1. Simulates (once; reused from benchmarks/out/) a paired-end BAM with
   --fragments fragments (2 reads each) over --chroms chromosomes, plus a
   one-chromosome BAM of the same chromosome length and depth.
2. Equality check on settings both tools support: read 5' ends counted per
   25 bp bin. Ours: ``--shift-plus 0 --shift-minus 0 --extend 0 --stat sum``;
   deepTools: ``bamCoverage --Offset 1 --binSize 25 --minMappingQuality 30
   --samFlagExclude 3844 --samFlagInclude 2 -p 1``. Flag 3844 = unmapped 4 +
   secondary 256 + QC-fail 512 + duplicate 1024 + supplementary 2048 and flag 2
   (proper pair) required: exactly our default read filter. The bigWigs are
   compared bin by bin on the nuclear chromosomes (we drop chrM; bamCoverage
   has no such switch).
3. Ours with the default ATAC settings (Tn5 shift +4/-5, +-100 bp, mean) for reference.
4. Memory scaling: our peak RSS on the 1-chromosome BAM vs the N-chromosome BAM
   (work is chromosome by chromosome, so it should not grow).

Each tool runs as its own subprocess; wall time and the child's peak RSS
(``getrusage(RUSAGE_CHILDREN)`` inside a fresh wrapper process) are reported.

    python benchmarks/bench_binning.py            # ~2-5 minutes
    python benchmarks/bench_binning.py --fragments 300000 --chrom-length 2000000   # quick
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyBigWig

HERE = Path(__file__).resolve().parent
SAM_FLAG_EXCLUDE = 4 | 256 | 512 | 1024 | 2048   # = 3844, our default ReadFilter
SAM_FLAG_INCLUDE = 2                             # proper pair

# Runs a command and prints its wall time and the peak RSS of its process tree's largest member.
MEASURE = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
seconds = time.perf_counter() - t
rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": rc.returncode, "seconds": seconds, "rss_mb": rss_kb / 1024, "stderr": rc.stderr[-2000:]}))
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--fragments", type=int, default=1_200_000, help="fragments in the main BAM (2 reads each)")
    p.add_argument("--chroms", type=int, default=4, help="chromosomes in the main BAM (default 4)")
    p.add_argument("--chrom-length", type=int, default=5_000_000, help="length of each chromosome (default 5 Mb)")
    p.add_argument("--out-dir", type=Path, default=HERE / "out",
                   help="where BAMs and bigWigs go (default benchmarks/out)")
    p.add_argument("--rebuild", action="store_true", help="re-simulate the BAMs even if they exist")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build_bam(out_dir: Path, n_chroms: int, chrom_length: int, n_fragments: int, seed: int, rebuild: bool) -> Path:
    """Simulate once; the folder name records the parameters so a changed option rebuilds."""
    from atacdenoise.tracks.simulate import simulate

    folder = out_dir / f"sim_{n_chroms}x{chrom_length}_{n_fragments}_s{seed}"
    bam = folder / "bench.bam"
    if rebuild or not (folder / "bench.bam.bai").exists():
        print(f"simulating {n_fragments:,} fragments on {n_chroms} x {chrom_length:,} bp -> {folder}", flush=True)
        simulate(folder, n_chroms=n_chroms, chrom_length=chrom_length, n_fragments=n_fragments, seed=seed,
                 prefix="bench", fastq=False)
    return bam


def measure(command: list[str]) -> dict:
    run = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    result = json.loads(run.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"command failed ({result['rc']}): {' '.join(command)}\n{result['stderr']}")
    return result


def ours(bam: Path, prefix: Path, equal_settings: bool) -> dict:
    command = [sys.executable, "-m", "atacdenoise.cli", "bin", "--input", str(bam), "--out-prefix", str(prefix),
               "--bin-size", "25"]
    if equal_settings:
        command += ["--shift-plus", "0", "--shift-minus", "0", "--extend", "0", "--stat", "sum"]
    return measure(command)


def bam_coverage(bam: Path, out: Path) -> dict:
    return measure(["bamCoverage", "-b", str(bam), "-o", str(out), "--binSize", "25", "--Offset", "1",
                    "--minMappingQuality", "30", "--samFlagExclude", str(SAM_FLAG_EXCLUDE),
                    "--samFlagInclude", str(SAM_FLAG_INCLUDE), "-p", "1"])


def bin_values(path: Path, chrom: str, length: int, bin_size: int = 25) -> np.ndarray:
    """One value per bin (the value at each bin's first base; both tools write whole bins)."""
    with pyBigWig.open(str(path)) as bw:
        if chrom not in bw.chroms():
            return np.zeros(-(-length // bin_size))
        return np.nan_to_num(bw.values(chrom, 0, length, numpy=True))[::bin_size]


def compare(a: Path, b: Path, sizes: dict[str, int]) -> tuple[float, int]:
    """Largest absolute per-bin difference and the total count, over ``sizes``."""
    worst, total = 0.0, 0
    for chrom, length in sizes.items():
        x, y = bin_values(a, chrom, length), bin_values(b, chrom, length)
        worst = max(worst, float(np.abs(x - y).max()))
        total += int(x.sum())
    return worst, total


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    bam = build_bam(args.out_dir, args.chroms, args.chrom_length, args.fragments, args.seed, args.rebuild)
    one_chrom_bam = build_bam(args.out_dir, 1, args.chrom_length, args.fragments // args.chroms, args.seed,
                              args.rebuild)
    nuclear = {f"chr{i + 1}": args.chrom_length for i in range(args.chroms)}
    out = bam.parent
    rows = []

    counts = ours(bam, out / "ours_counts", equal_settings=True)
    rows.append(("atacdenoise bin", "5' ends, sum, no shift", counts, None))
    atac = ours(bam, out / "ours_atac", equal_settings=False)
    rows.append(("atacdenoise bin", "ATAC default: +4/-5, +-100 bp, mean", atac, None))

    has_deeptools = importlib.util.find_spec("deeptools") is not None and shutil.which("bamCoverage")
    if has_deeptools:
        deep = bam_coverage(bam, out / "bamCoverage_counts.bw")
        worst, total = compare(out / "ours_counts.bw", out / "bamCoverage_counts.bw", nuclear)
        equal = "yes" if worst == 0 else f"no (max |diff| {worst:g})"
        rows[0] = (*rows[0][:3], equal)
        rows.append(("deepTools bamCoverage", "--Offset 1 --binSize 25 -p 1", deep, equal))
    one = ours(one_chrom_bam, one_chrom_bam.parent / "ours_atac", equal_settings=False)
    rows.append(("atacdenoise bin", f"ATAC default, 1 chrom ({args.fragments // args.chroms:,} fragments)", one, None))

    print(f"\nBAM: {bam} ({2 * args.fragments:,} reads, {args.chroms} x {args.chrom_length:,} bp)")
    print(f"{'tool':<24}{'settings':<48}{'seconds':>9}{'peak RSS MB':>13}  equal?")
    for tool, settings, result, equal in rows:
        print(f"{tool:<24}{settings:<48}{result['seconds']:>9.1f}{result['rss_mb']:>13.0f}  {equal or '-'}")
    if has_deeptools:
        print(f"\n5' ends counted on {', '.join(nuclear)}: {total:,}; bin-by-bin max |ours - bamCoverage| = {worst:g}")
    else:
        print("\ndeepTools is not installed, so the bamCoverage comparison was skipped: pip install deeptools")
    growth = atac["rss_mb"] / one["rss_mb"]
    print(f"memory scaling: peak RSS {one['rss_mb']:.0f} MB with 1 chromosome, {atac['rss_mb']:.0f} MB with "
          f"{args.chroms} ({growth:.2f}x; chromosome-by-chromosome work should keep this near 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
