"""The bigWig writers side by side on one chromosome-sized track: time, peak RSS and file size.

    python benchmarks/bench_bigwig_writer.py                      # a synthetic 249 Mb chromosome at 25 bp
    python benchmarks/bench_bigwig_writer.py --values-from x.bw   # the first chromosome of a bigWig

Writers: ``atacdenoise`` (io/bigwig_writer.py, what denoise, bin and merge use) and ``pyBigWig``
(libBigWig; what they used before, ``addEntries`` with ``span=step`` from the numpy array). Each runs in its own
process, so its peak RSS is its own (the values themselves, 40 MB for 10 M bins, are in both). The values are
rounded as denoise stores them (io/bigwig.round_significant, 10 mantissa bits) and handed over in chunks of
400,000 bins, as denoise does. The table ends with a check that both files hold the same per-base values.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHUNK_BINS = 400_000
BIN = 25


def _values(values_from: str | None, length: int, seed: int) -> tuple[str, int, np.ndarray]:
    from atacdenoise.io.bigwig import BigWigReader, round_significant

    if values_from:
        with BigWigReader(values_from) as bw:
            chrom, length = next(iter(bw.chrom_sizes.items()))
            values = bw.values(chrom)[::BIN].astype(np.float32)
    else:  # a smooth background with sparse peaks, as a denoised track looks
        chrom, rng = "chr1", np.random.default_rng(seed)
        n = -(-length // BIN)
        background = np.convolve(rng.gamma(2.0, 0.5, n), np.ones(40) / 40, mode="same")
        peaks = np.convolve((rng.random(n) < 2e-4) * rng.gamma(2.0, 40.0, n), np.hanning(30), mode="same")
        values = (background + peaks).astype(np.float32)
    values[values == 0] = np.float32(1e-3)  # every bin kept: the pyBigWig writer here writes them all
    return chrom, length, round_significant(values, 10)


def _write_atacdenoise(path: Path, chrom: str, length: int, values: np.ndarray) -> None:
    from atacdenoise.io.bigwig import BigWigWriter

    with BigWigWriter(path, {chrom: length}, BIN) as writer:
        for lo in range(0, len(values), CHUNK_BINS):
            writer.add(chrom, lo, values[lo:lo + CHUNK_BINS])


def _write_pybigwig(path: Path, chrom: str, length: int, values: np.ndarray) -> None:
    import pyBigWig

    bw = pyBigWig.open(str(path), "w")
    bw.addHeader([(chrom, length)], maxZooms=10)
    partial = length % BIN != 0
    full = values[:-1] if partial else values
    for lo in range(0, len(full), CHUNK_BINS):  # all bins are non-zero here: one entry run per chunk
        chunk = full[lo:lo + CHUNK_BINS]
        bw.addEntries(chrom, lo * BIN, values=chunk, span=BIN, step=BIN)
    if partial:
        bw.addEntries([chrom], [(len(values) - 1) * BIN], ends=[length], values=[float(values[-1])])
    bw.close()


WRITERS = {"atacdenoise": _write_atacdenoise, "pyBigWig": _write_pybigwig}


def _child(writer: str, values_path: str, out: str, chrom: str, length: int) -> None:
    values = np.load(values_path)
    start = time.perf_counter()
    WRITERS[writer](Path(out), chrom, length, values)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float:
    """This process's VmHWM: unlike ru_maxrss, it starts afresh at exec (not the forking parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values-from", help="a bigWig whose first chromosome to write (default: synthetic)")
    parser.add_argument("--length", type=int, default=248_956_422, help="synthetic chromosome length (bp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs per writer; the table shows the fastest")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        writer, values_path, out, chrom, length = args.child
        _child(writer, values_path, out, chrom, int(length))
        return
    chrom, length, values = _values(args.values_from, args.length, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        values_path = os.path.join(tmp, "values.npy")
        np.save(values_path, values)
        rows = []
        for writer in WRITERS:
            out = os.path.join(tmp, f"{writer}.bw")
            runs = [json.loads(subprocess.run([sys.executable, __file__, "--child", writer, values_path, out, chrom,
                                               str(length)], check=True, capture_output=True, text=True).stdout)
                    for _ in range(args.repeats)]
            best = min(runs, key=lambda run: run["seconds"])
            rows.append((writer, best["seconds"], best["peak_rss_mb"], os.path.getsize(out) / 1e6))
        same = _same_values(os.path.join(tmp, "atacdenoise.bw"), os.path.join(tmp, "pyBigWig.bw"), chrom, length)
    print(f"{chrom}: {length:,} bp, {len(values):,} bins of {BIN} bp, chunks of {CHUNK_BINS:,} bins\n")
    print("| writer | seconds | peak RSS MB | file MB |\n| --- | --- | --- | --- |")
    for writer, seconds, rss, size in rows:
        print(f"| {writer} | {seconds:.2f} | {rss:.0f} | {size:.1f} |")
    print(f"\nsame per-base values in both files: {same}")


def _same_values(a: str, b: str, chrom: str, length: int, step: int = 10_000_000) -> bool:
    import pyBigWig

    with pyBigWig.open(a) as first, pyBigWig.open(b) as second:
        return all(np.array_equal(first.values(chrom, lo, min(lo + step, length), numpy=True),
                                  second.values(chrom, lo, min(lo + step, length), numpy=True))
                   for lo in range(0, length, step))


if __name__ == "__main__":
    main()
