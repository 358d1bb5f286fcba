"""Benchmark ONNX denoising on this CPU: seconds per 10 Mb and peak RSS, and ONNX Runtime vs PyTorch eager.

Model: ``build_model(default_config("hilbert2d"))``, the shape of the seed's
final model (random weights: speed does not depend on them). Genome: synthetic
chromosomes of 10 Mb with ~1,300 insertions per Mb (like the HSC 5M library),
1, 2 and 4 of them, each denoised in a fresh process so its peak RSS is its own:
RSS must not grow with the genome. Goals: <= 5.4 s per 10 Mb, RSS < 2 GB.

    python benchmarks/bench_denoise.py [--threads 2] [--chroms 1,2,4] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHROM_LENGTH = 10_000_000
INSERTIONS_PER_MB = 1_300
GOAL_SECONDS, GOAL_RSS_MB = 5.4, 2048

CHILD = """
import json, resource, sys, time
from atacdenoise.denoise import denoise
sizes = json.loads(sys.argv[4])
started = time.perf_counter()
denoise(sys.argv[1], sys.argv[2], sizes, sys.argv[3], threads=int(sys.argv[5]), progress=False)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch_loaded": "torch" in sys.modules}))
"""


def write_genome(folder: Path, n_chroms: int, seed: int = 0) -> tuple[Path, dict[str, int]]:
    """Synthetic insertions BED: background plus clustered 'peaks' (a benchmark fixture, not data)."""
    rng = np.random.default_rng(seed)
    sizes = {f"chr{i + 1}": CHROM_LENGTH for i in range(n_chroms)}
    path = folder / f"genome{n_chroms}.bed.gz"
    with gzip.open(path, "wt", compresslevel=1) as out:
        for chrom, length in sizes.items():
            n = INSERTIONS_PER_MB * length // 1_000_000
            sites = rng.integers(0, length, n // 40)
            peaks = (np.repeat(sites, 20) + rng.normal(0, 80, len(sites) * 20)).astype(np.int64)
            positions = np.sort(np.clip(np.concatenate([rng.integers(0, length, n - len(peaks)), peaks]), 0, length - 1))
            out.write("".join(f"{chrom}\t{p}\t{p + 1}\t.\t0\t+\n" for p in positions.tolist()))
    return path, sizes


def export_model(folder: Path):
    from atacdenoise.denoise.contract import ModelContract
    from atacdenoise.models import build_model, default_config
    from atacdenoise.registry.onnx_export import export_onnx

    model = build_model(default_config("hilbert2d")).eval()
    path = folder / "hilbert2d_seed_final.onnx"
    export_onnx(model, path, contract=ModelContract(space="hilbert2d", genome="synthetic"))
    return model, path


def runtime_ratio(model, onnx_path: Path, threads: int, n_windows: int = 128, batch: int = 64) -> tuple[float, float]:
    """Seconds per window for onnxruntime and PyTorch eager on the same batches and thread count."""
    import onnxruntime as ort
    import torch

    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).gamma(0.3, 2.0, (n_windows, model.window_bins)).astype(np.float32)

    def timed(run):
        run(x[:batch])  # warm-up
        started = time.perf_counter()
        for first in range(0, n_windows, batch):
            run(x[first:first + batch])
        return (time.perf_counter() - started) / n_windows

    with torch.no_grad():
        eager = timed(lambda b: model(torch.from_numpy(b)))
    onnx = timed(lambda b: session.run(None, {"x": b}))
    return onnx, eager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chroms", default="1,2,4")
    parser.add_argument("--keep", help="keep the synthetic genome and outputs here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        model, onnx_path = export_model(folder)
        params = sum(p.numel() for p in model.parameters())
        onnx_mb = onnx_path.stat().st_size / 1e6
        rows = []
        for n_chroms in (int(n) for n in args.chroms.split(",")):
            bed, sizes = write_genome(folder, n_chroms)
            result = subprocess.run([sys.executable, "-c", CHILD, str(bed), str(onnx_path),
                                     str(folder / f"out{n_chroms}"), json.dumps(sizes), str(args.threads)],
                                    capture_output=True, text=True, check=True)
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append((n_chroms, measured["seconds"], measured["seconds"] / n_chroms, measured["rss_mb"],
                         measured["torch_loaded"]))
        onnx, eager = runtime_ratio(model, onnx_path, args.threads)

    print(f"model: hilbert2d seed-final shape, {params:,} parameters, ONNX file {onnx_mb:.0f} MB")
    print(f"CPU threads: {args.threads}; genome: synthetic 10 Mb chromosomes, {INSERTIONS_PER_MB:,} insertions/Mb")
    print(f"{'chroms':>6} {'Mb':>5} {'seconds':>8} {'s/10Mb':>7} {'peak RSS MB':>11} {'torch?':>6}")
    for n_chroms, seconds, per10, rss, torch_loaded in rows:
        print(f"{n_chroms:>6} {n_chroms * 10:>5} {seconds:>8.2f} {per10:>7.2f} {rss:>11.0f} {str(torch_loaded):>6}")
    print(f"onnxruntime {onnx * 1e3:.2f} ms/window, PyTorch eager {eager * 1e3:.2f} ms/window, "
          f"ratio ORT/eager = {onnx / eager:.2f}")
    worst_speed, worst_rss = max(r[2] for r in rows), max(r[3] for r in rows)
    print(f"goal <= {GOAL_SECONDS} s per 10 Mb: {'met' if worst_speed <= GOAL_SECONDS else 'NOT met'} "
          f"(worst {worst_speed:.2f}); goal RSS < {GOAL_RSS_MB} MB: "
          f"{'met' if worst_rss < GOAL_RSS_MB else 'NOT met'} (worst {worst_rss:.0f})")


if __name__ == "__main__":
    main()
