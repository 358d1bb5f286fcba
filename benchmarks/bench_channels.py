#!/usr/bin/env python
"""What the genome channels buy: counts-only vs + annotation / + sequence models, beside smoothing and MACS3.

Two real data sets, per base against the deep library inside the scored regions:

- ``hsc``: ../shared/data/hsc, chr2 (validation chromosome of every HSC model),
  depths made by keeping each 5M insertion with p (0.1 -> 0.5M, 0.2 -> 1M, 1 -> 5M);
  annotation from ../shared/data/hsc/annotation (no hg19 sequence is reachable here).
- ``yeast``: the shallow twins made by ``benchmarks/prepare_yeast.sh`` (each
  fragment kept with p = 0.1 and 0.025), validation chromosome chrVII; the
  S288C genome and its genes from ../shared/data/yeast.

Rows: raw shallow coverage, Gaussian smoothing (sd chosen on a training
chromosome by AUPRC), MACS3 on the shallow insertions, then one row per
``--model NAME=PATH.onnx``. Every model is given every genome file; a model
uses the channels its contract lists and ignores the rest (as ``denoise`` does).

Usage:
  python benchmarks/bench_channels.py --dataset hsc --model counts=A.onnx --model annotation=B.onnx
  python benchmarks/bench_channels.py --dataset yeast --work work/yeast --model counts=C.onnx --model both=D.onnx
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import hsc_annotation, macs3_tracks, model_tracks, print_table, raw_coverage  # noqa: E402

from atacdenoise.metrics import auprc  # noqa: E402
from atacdenoise.evaluate.per_base import Scored  # noqa: E402
from atacdenoise.io.reads import write_insertions_bed  # noqa: E402
from atacdenoise.io.bigwig import read_bigwig  # noqa: E402
from atacdenoise.io.chromsizes import read_chrom_sizes  # noqa: E402
from atacdenoise.io.narrowpeak import interval_mask, read_peaks  # noqa: E402
from atacdenoise.io.reads import iter_insertions  # noqa: E402
from atacdenoise.tracks.subsample import thin_positions  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SDS = (50, 100, 200, 300, 500)


@dataclass
class Dataset:
    """Where truth, shallow inputs and genome files of one data set are, and how depths are named."""

    name: str
    sizes: dict[str, int]
    val_chrom: str
    sd_chrom: str            # a training chromosome: the smoothing sd is chosen there, never on val_chrom
    peaks: dict
    regions: dict
    genome_files: dict
    macs3_genome_size: str
    truth_coverage: object   # chrom -> per-base truth coverage
    shallow: object          # p -> {chrom: insertions}
    depth_label: object      # p -> str
    cache: dict = field(default_factory=dict)

    def truth(self, chrom: str):
        length = self.sizes[chrom]
        return (self.truth_coverage(chrom), interval_mask(self.peaks.get(chrom), length),
                interval_mask(self.regions.get(chrom), length))


def hsc(data: Path) -> Dataset:
    sizes = read_chrom_sizes(data / "chrom.sizes")

    def shallow(p: float):
        out = {}
        for chrom, positions in iter_insertions(data / "noisy_5M.tn5_insertions.bed.gz", sizes):
            rng = np.random.default_rng([0, int(p * 1000), sorted(sizes).index(chrom)])  # as bench_quality
            out[chrom] = positions if p >= 1 else thin_positions(positions, p, rng)
        return out

    return Dataset("hsc", sizes, "chr2", "chr1", read_peaks(data / "clean_80M.peaks.bed"),
                   read_peaks(data / "clean_80M.labelled_regions.bed"),
                   hsc_annotation(data),
                   "hs", lambda chrom: read_bigwig(data / "clean_80M.coverage.bw", chrom), shallow,
                   lambda p: f"{p * 5:g}M (p={p:g})")


def yeast(data: Path, work: Path) -> Dataset:
    sizes = read_chrom_sizes(data / "chrom.sizes")
    deep = dict(iter_insertions(work / "deep.insertions.bed.gz", sizes))

    def shallow(p: float):
        path = work / f"shallow_{p:g}.insertions.bed.gz"
        if not path.exists():
            raise SystemExit(f"bench_channels: {path} missing: run benchmarks/prepare_yeast.sh first")
        return dict(iter_insertions(path, sizes))

    train_chroms = [c for c in sizes if c in deep and c not in ("chrVII", "chrM", "chrXII")]
    return Dataset("yeast", sizes, "chrVII", train_chroms[0], read_peaks(work / "deep.peaks.narrowPeak"),
                   read_peaks(work / "regions.bed"),
                   {"fasta": str(data / "genome.fa.gz"), "annotations": {"tss": str(data / "genes.gff3.gz")}},
                   "1.2e7", lambda chrom: raw_coverage(deep.get(chrom, np.zeros(0, np.int64)), sizes[chrom]),
                   shallow, lambda p: f"{p * 100:g} %")


def best_sd(dataset: Dataset, insertions: dict) -> int:
    chrom = dataset.sd_chrom
    _, peaks, region = dataset.truth(chrom)
    raw = raw_coverage(insertions[chrom], dataset.sizes[chrom])
    scores = {sd: auprc(gaussian_filter1d(raw, sd)[region], peaks[region]) or 0.0 for sd in SDS}
    return max(scores, key=scores.get)


def evaluate_depth(dataset: Dataset, p: float, models: dict[str, str], baselines: bool) -> dict[str, dict]:
    insertions = dataset.shallow(p)
    chrom = dataset.val_chrom
    true_cov, true_peaks, region = dataset.truth(chrom)
    rows: dict[str, Scored] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if baselines:
            raw = raw_coverage(insertions[chrom], dataset.sizes[chrom])
            sd = best_sd(dataset, insertions)
            rows = {"raw": Scored(), f"gaussian (sd {sd})": Scored(), "macs3": Scored()}
            rows["raw"].add(region, raw, true_cov, true_peaks)
            rows[f"gaussian (sd {sd})"].add(region, gaussian_filter1d(raw, sd), true_cov, true_peaks)
            chrom_bed = Path(tmp) / f"{chrom}.bed.gz"
            write_insertions_bed(chrom_bed, iter([(chrom, insertions[chrom])]))
            signal, called = macs3_tracks(chrom_bed, chrom, {chrom: dataset.sizes[chrom]}, Path(tmp),
                                          genome_size=dataset.macs3_genome_size)
            rows["macs3"].add(region, signal, true_cov, true_peaks, called=called)
        library = Path(tmp) / "library.bed.gz"  # the whole shallow library: its depth is measured on all of it
        write_insertions_bed(library, iter(sorted(insertions.items())))
        for name, path in models.items():
            rows[name] = Scored()
            denoised, prob, called = model_tracks(path, library, chrom, dataset.sizes, Path(tmp),
                                                  dataset.genome_files)
            rows[name].add(region, denoised, true_cov, true_peaks, score=prob, called=called)
    return {name: scored.metrics() for name, scored in rows.items()}


def print_results(dataset: Dataset, results: dict[float, dict[str, dict]]) -> None:
    print(f"Per-base metrics on {dataset.name} {dataset.val_chrom} inside the scored regions, truth = deep library")
    print_table(results, dataset.depth_label)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("hsc", "yeast"), required=True)
    parser.add_argument("--depths", help="default: 0.1,0.2,1.0 (hsc), 0.1,0.025 (yeast)")
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH.onnx (repeatable)")
    parser.add_argument("--work", type=Path, default=Path("work/yeast"), help="prepare_yeast.sh's folder (yeast)")
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--models-only", action="store_true", help="skip raw, Gaussian and MACS3")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # denoise's notes about files a model ignores are expected here
    if not (args.data / args.dataset / "chrom.sizes").exists():
        print(f"bench_channels: real data not found at {args.data / args.dataset}; nothing to measure", file=sys.stderr)
        return 1
    dataset = hsc(args.data / "hsc") if args.dataset == "hsc" else yeast(args.data / "yeast", args.work)
    depths = [float(x) for x in (args.depths or ("0.1,0.2,1.0" if args.dataset == "hsc" else "0.1,0.025")).split(",")]
    models = dict(item.split("=", 1) for item in args.model)
    results = {}
    for p in depths:
        started = time.time()
        results[p] = evaluate_depth(dataset, p, models, baselines=not args.models_only)
        print(f"{dataset.name} p={p:g} evaluated in {time.time() - started:.0f} s", file=sys.stderr)
    print_results(dataset, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
