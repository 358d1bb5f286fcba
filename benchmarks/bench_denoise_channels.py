#!/usr/bin/env python
"""What genome channels cost at denoising time: seconds per 10 Mb and peak RSS, with and without them.

Model: the bundled model's architecture (dilated1d, 32 channels, 4 residual
blocks; random weights: speed does not depend on them) in four input variants:
counts only; + TSS annotation; + fixed sequence features (GC, CpG, N);
+ learned sequence tower (each bin's 25 bases as codes) + TSS. Genome:
synthetic 10 Mb chromosomes (random sequence as a gzip FASTA, one gene per
20 kb as GFF3, ~1,300 insertions per Mb), 1 and 2 of them, each run in a fresh
process so its peak RSS is its own. Goal (issue 13): with sequence, within 3x
of counts-only per 10 Mb; RSS flat in the number of chromosomes.

    python benchmarks/bench_denoise_channels.py [--threads 2] [--chroms 1,2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_denoise import CHILD, CHROM_LENGTH, write_genome  # noqa: E402

ARCHITECTURE = Path(__file__).resolve().parent / "searches" / "cpu_resample_dilated1d" / "best_model.json"
GOAL_RATIO = 3.0
VARIANTS = {  # name -> (channel specs, needs the FASTA)
    "counts only": [],
    "+ tss": [{"name": "tss", "render": "decay", "scale_bp": 1000, "width": 1}],
    "+ sequence (fixed)": [{"name": "sequence", "render": r, "scale_bp": 0, "width": 1}
                           for r in ("gc_fraction", "cpg_density", "n_fraction")],
    "+ sequence (learned) + tss": [{"name": "sequence", "render": "base_codes", "scale_bp": 0, "width": 25},
                                   {"name": "tss", "render": "decay", "scale_bp": 1000, "width": 1}],
}

CHILD_WITH_GENOME = CHILD.replace("threads=int(sys.argv[5]), progress=False)",
                                  "threads=int(sys.argv[5]), progress=False, **json.loads(sys.argv[6]))")


def write_reference(folder: Path, sizes: dict[str, int], seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    fasta, gff = folder / "genome.fa.gz", folder / "genes.gff3"
    with gzip.open(fasta, "wt", compresslevel=1) as out:
        for chrom, length in sizes.items():
            seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, length)].tobytes().decode()
            out.write(f">{chrom}\n" + "\n".join(seq[i:i + 60] for i in range(0, length, 60)) + "\n")
    with open(gff, "w") as out:
        for chrom, length in sizes.items():
            for start in range(1_000, length - 5_000, 20_000):
                out.write(f"{chrom}\tbench\tgene\t{start}\t{start + 3_000}\t.\t+\t.\tID=g{start}\n")
    return fasta, gff


def export_variant(folder: Path, name: str, channels: list[dict]) -> Path:
    from atacdenoise.denoise.contract import ModelContract
    from atacdenoise.models import build_model
    from atacdenoise.registry.onnx_export import export_onnx
    from atacdenoise.tracks.channels import model_inputs

    config = {**json.loads(ARCHITECTURE.read_text()), **(model_inputs(channels) if channels else {})}
    path = folder / f"{len(channels)}_{name.split()[1]}.onnx"
    export_onnx(build_model(config).eval(), path,
                contract=ModelContract(space="dilated1d", genome="synthetic", channels=json.dumps(channels)))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chroms", default="1,2")
    args = parser.parse_args()
    counts = [int(n) for n in args.chroms.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fasta, gff = write_reference(folder, {f"chr{i + 1}": CHROM_LENGTH for i in range(max(counts))})
        genomes = {n: write_genome(folder, n) for n in counts}
        for name, channels in VARIANTS.items():
            model = export_variant(folder, name, channels)
            files = {"annotations": {"tss": str(gff)}}
            if any(c["name"] == "sequence" for c in channels):
                files["fasta"] = str(fasta)
            for n in counts:
                bed, sizes = genomes[n]
                result = subprocess.run([sys.executable, "-c", CHILD_WITH_GENOME, str(bed), str(model),
                                         str(folder / f"out{n}"), json.dumps(sizes), str(args.threads),
                                         json.dumps(files)], capture_output=True, text=True, check=True)
                measured = json.loads(result.stdout.strip().splitlines()[-1])
                rows.append((name, n, measured["seconds"] / n, measured["rss_mb"]))
    base = {n: per10 for name, n, per10, _ in rows if name == "counts only"}
    print(f"CPU threads: {args.threads}; synthetic 10 Mb chromosomes; bundled architecture, random weights")
    print(f"| variant | chromosomes | s per 10 Mb | x counts-only | peak RSS MB |")
    print("| --- | --- | --- | --- | --- |")
    for name, n, per10, rss in rows:
        print(f"| {name} | {n} | {per10:.2f} | {per10 / base[n]:.2f} | {rss:.0f} |")
    worst = max(per10 / base[n] for name, n, per10, _ in rows if "sequence" in name)
    print(f"goal: with sequence <= {GOAL_RATIO}x counts-only per 10 Mb: {'met' if worst <= GOAL_RATIO else 'NOT met'} "
          f"(worst {worst:.2f}x)")


if __name__ == "__main__":
    main()
