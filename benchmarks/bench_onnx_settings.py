"""ONNX Runtime session settings for denoising on CPU: which are fastest for the bundled counts model.

Input (synthetic, made here): the windows of one chromosome (``--mb``, default
10 Mb) binned as ``denoise`` bins it (25 bp, model units) from insertions at
the 5M-read density of bench_genome_scale.py (1,300 per Mb: half in peaks)
or the 0.5M one (a tenth kept). Each setting builds its own session and runs
every window once per repeat (after one warm-up batch), the repeats of all
settings interleaved; one setting changes at a time from the baseline (graph
optimisation ORT_ENABLE_ALL, intra-op threads = ``--threads``, inter-op 1,
sequential, spinning on, batch 64). Outputs are compared with the baseline's:
``max |diff|`` shows which settings change the numbers (not only the time).
The machine is shared: times are noisy, CPU seconds less so.

With ``--gap-mb``, ``denoise`` itself runs with and without skipping batches
of one constant input (``OnnxDenoiser.predict``) over a chromosome with a
stretch without insertions.

    python benchmarks/bench_onnx_settings.py [--mb 10] [--threads 2] [--repeats 2]
    python benchmarks/bench_onnx_settings.py --gap-mb 30 6 24
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "pyscripts"))
sys.path.insert(0, str(REPO / "benchmarks"))

MODEL = REPO / "registry" / "models" / "atac-denoiser-counts.onnx"
BASELINE = {"opt": "ORT_ENABLE_ALL", "intra": 2, "inter": 1, "mode": "ORT_SEQUENTIAL", "spin": "1", "batch": 64}


def synthetic_positions(length: int, keep: float, seed: int = 0) -> np.ndarray:
    """Sorted insertion positions over ``length`` bp as bench_genome_scale makes them, each kept with p = ``keep``."""
    from bench_genome_scale import INSERTIONS_PER_MB

    rng = np.random.default_rng(seed)
    n = INSERTIONS_PER_MB * length // 1_000_000
    sites = rng.integers(250, length - 250, n // 40)
    in_peaks = (np.repeat(sites, 20) + rng.normal(0, 80, len(sites) * 20)).astype(np.int64)
    positions = np.sort(np.clip(np.concatenate([rng.integers(0, length, n - len(in_peaks)), in_peaks]), 0, length - 1))
    return positions[rng.random(len(positions)) < keep]


def windows_of(length: int, keep: float, seed: int = 0) -> np.ndarray:
    """The model's input windows over a synthetic chromosome of ``length`` bp (insertions as bench_genome_scale)."""
    from atacdenoise.denoise.onnx_runner import OnnxDenoiser
    from atacdenoise.tracks.binning import coverage_bins
    from atacdenoise.tracks.windows import WindowSpec, extract, tile_starts

    c = OnnxDenoiser(MODEL, threads=1).contract
    positions = synthetic_positions(length, keep, seed)
    scale = c.reference_density * length / len(positions)  # model units: tracks/depth.py
    bins = coverage_bins(positions, length, c.bin_size, c.extend, c.stat, scale=scale)
    return extract(bins, tile_starts(len(bins), WindowSpec(c.window_bins, c.target_bins)), c.window_bins)


def skipping(length: int, gap: tuple[int, int], threads: int, repeats: int) -> None:
    """Print ``denoise`` times with and without skipping constant batches on a chromosome with a stretch
    ``gap`` (bp) without insertions, like hg38 chr1's centromere and heterochromatin."""
    import gzip
    import json
    import tempfile

    from atacdenoise.denoise import denoise
    from atacdenoise.denoise.onnx_runner import OnnxDenoiser

    positions = synthetic_positions(length, 1.0)
    positions = positions[(positions < gap[0]) | (positions >= gap[1])]
    print(f"\nA {length / 1e6:g} Mb chromosome without insertions in {gap[0] / 1e6:g}-{gap[1] / 1e6:g} Mb, 5M density, "
          f"denoise (batch 64, {threads} threads), repeats interleaved:\n")
    print("| skip constant batches | repeat | wall s | CPU s | windows run | windows skipped |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="skip-") as tmp:
        with gzip.open(Path(tmp) / "ins.bed.gz", "wt", compresslevel=1) as out:
            out.write("".join(f"chrA\t{x}\t{x + 1}\t.\t0\t+\n" for x in positions.tolist()))
        for repeat in range(repeats):
            for skip in (False, True):
                OnnxDenoiser.skip_constant = skip
                started, cpu = time.perf_counter(), time.process_time()
                out = denoise(Path(tmp) / "ins.bed.gz", MODEL, {"chrA": length}, Path(tmp) / f"skip{skip}",
                              threads=threads, progress=False, library_size=len(positions))
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                windows = json.loads(Path(out["provenance"]).read_text())["windows"]
                print(f"| {'yes' if skip else 'no'} | {repeat + 1} | {seconds:.1f} | {cpu:.1f} | {windows['run']} | "
                      f"{windows['skipped_constant']} |", flush=True)


def session(setting: dict):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, setting["opt"])
    options.intra_op_num_threads = setting["intra"]
    options.inter_op_num_threads = setting["inter"]
    options.execution_mode = getattr(ort.ExecutionMode, setting["mode"])
    options.add_session_config_entry("session.intra_op.allow_spinning", setting["spin"])
    return ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])


def run(sess, batch: int, windows: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(wall seconds, CPU seconds, signal) of one pass over every window."""
    out, started, cpu = [], time.perf_counter(), time.process_time()
    for first in range(0, len(windows), batch):
        out.append(sess.run(["signal"], {"x": np.ascontiguousarray(windows[first:first + batch])})[0])
    return time.perf_counter() - started, time.process_time() - cpu, np.concatenate(out)


def compare(variants: list[dict], windows: np.ndarray, repeats: int) -> list[tuple[float, float, float]]:
    """Per variant: (best wall s, CPU s of that run, max |signal - baseline's|); repeats interleave the
    variants so that a change of the machine's load touches all of them alike."""
    settings = [{**BASELINE, **change} for change in variants]
    sessions = [session(setting) for setting in settings]
    for sess, setting in zip(sessions, settings):
        sess.run(None, {"x": np.ascontiguousarray(windows[:setting["batch"]])})  # warm-up: arena, kernels
    best = [(np.inf, 0.0, 0.0)] * len(settings)
    reference = None
    for _ in range(repeats):
        for i, (sess, setting) in enumerate(zip(sessions, settings)):
            seconds, cpu, signal = run(sess, setting["batch"], windows)
            reference = signal if reference is None else reference
            if seconds < best[i][0]:
                best[i] = (seconds, cpu, float(np.abs(signal - reference).max()))
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="synthetic chromosome length in Mb (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="baseline intra-op threads (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting; the fastest counts (default 2)")
    parser.add_argument("--densities", default="5M,0.5M", help="5M and/or 0.5M (default both)")
    parser.add_argument("--gap-mb", type=float, nargs=3, metavar=("LENGTH", "FROM", "TO"),
                        help="instead: time denoise with and without skipping constant batches on a LENGTH Mb "
                             "chromosome without insertions in FROM-TO Mb (e.g. 30 6 24)")
    args = parser.parse_args(argv)
    if args.gap_mb:
        length, start, end = (int(x * 1e6) for x in args.gap_mb)
        skipping(length, (start, end), args.threads, args.repeats)
        return 0
    BASELINE["intra"] = args.threads
    variants = [{}, {"opt": "ORT_ENABLE_EXTENDED"}, {"opt": "ORT_ENABLE_BASIC"}, {"opt": "ORT_DISABLE_ALL"},
                {"intra": 1}, {"spin": "0"}, {"inter": 2, "mode": "ORT_PARALLEL"},
                {"batch": 8}, {"batch": 16}, {"batch": 32}, {"batch": 128}]
    keeps = {"5M": 1.0, "0.5M": 0.1}
    print(f"Model {MODEL.name}, a {args.mb:g} Mb synthetic chromosome, best of {args.repeats} (interleaved); "
          f"shared machine: CPU s are steadier than wall s.\n")
    print("| density | setting | wall s | s per 100 Mb | CPU s per 100 Mb | max abs diff vs baseline |")
    print("| --- | --- | --- | --- | --- | --- |")
    for density in args.densities.split(","):
        windows = windows_of(int(args.mb * 1e6), keeps[density])
        for change, (seconds, cpu, diff) in zip(variants, compare(variants, windows, args.repeats)):
            label = ", ".join(f"{k}={v}" for k, v in change.items()) or "baseline"
            print(f"| {density} | {label} | {seconds:.2f} | {seconds * 100 / args.mb:.1f} | {cpu * 100 / args.mb:.1f} "
                  f"| {diff:.2g} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
