#!/usr/bin/env python
"""Denoising quality on the real HSC data: chr2, against the 80M-read truth, in a genome-wide library.

Depths are made the seed's way, by keeping each of the 5M library's insertions
with probability p (0.1 -> 0.5M, 0.2 -> 1M, 1.0 -> 5M). What every method sees
is what a real sample looks like (issue 19): a genome-sized library made of
chr2 (first 10 Mb) and ``--copies`` renamed copies of it (299: 3 Gb, 517k
insertions at 0.5M), so the library's depth is a genome's, not a slice's.
Models denoise chr2 of it (``denoise --chroms chr2``), MACS3 calls the whole
of it. Rows:

- raw: the noisy coverage itself (insertions extended +-100 bp);
- gaussian: raw smoothed with a Gaussian whose sd is chosen on chr1 (by AUPRC);
- macs3: MACS3 on the noisy insertions (its pileup as score, its peaks as calls);
- one row per ONNX model given with --model NAME=PATH (denoised track, peak
  probability as score, peaks from the probability).

Per-base metrics inside the labelled regions (see atacdenoise.evaluate.per_base).
Usage: python benchmarks/bench_quality.py [--depths 0.1,0.2,1.0] [--copies 299] [--model NAME=model.onnx ...]
       [--models-only]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from atacdenoise.metrics import format_metric
from atacdenoise.evaluate.per_base import Scored
from atacdenoise.io.bigwig import read_bigwig
from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.narrowpeak import interval_mask, read_peaks
from atacdenoise.io.reads import iter_insertions, write_insertions_bed
from atacdenoise.tracks.binning import coverage_bins
from atacdenoise.tracks.subsample import thin_positions

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hsc"
SDS = (25, 50, 100, 200, 300, 500)
COLUMNS = ("pearson", "spearman", "auroc", "auprc", "peak_f1")


class Truth:
    """Truth coverage, truth peak mask and scored-region mask per chromosome."""

    def __init__(self, data: Path):
        self.sizes = read_chrom_sizes(data / "chrom.sizes")
        self.peaks = read_peaks(data / "clean_80M.peaks.bed")
        self.regions = read_peaks(data / "clean_80M.labelled_regions.bed")
        self.data = data

    def chrom(self, chrom: str):
        length = self.sizes[chrom]
        return (read_bigwig(self.data / "clean_80M.coverage.bw", chrom),
                interval_mask(self.peaks.get(chrom), length),
                interval_mask(self.regions.get(chrom), length))


def noisy_insertions(data: Path, sizes: dict, p: float, seed: int) -> dict[str, np.ndarray]:
    out = {}
    for chrom, positions in iter_insertions(data / "noisy_5M.tn5_insertions.bed.gz", sizes):
        rng = np.random.default_rng([seed, int(p * 1000), sorted(sizes).index(chrom)])
        out[chrom] = positions if p >= 1 else thin_positions(positions, p, rng)
    return out


def raw_coverage(positions: np.ndarray, length: int) -> np.ndarray:
    return coverage_bins(positions, length, bin_size=1, extend=100, stat="sum")


def best_sds(truth: Truth, raw: np.ndarray, chrom: str = "chr1") -> dict[str, int]:
    """The smoothing sd with the best AUPRC and the one with the best Pearson, picked on the training
    chromosome, never on chr2: a model must beat the best smoothing on each metric."""
    true_cov, peaks, region = truth.chrom(chrom)
    from atacdenoise.metrics import auprc, pearson

    smoothed = {sd: gaussian_filter1d(raw, sd)[region] for sd in SDS}
    by_auprc = {sd: auprc(track, peaks[region]) or 0.0 for sd, track in smoothed.items()}
    by_pearson = {sd: pearson(track, true_cov[:len(raw)][region]) or 0.0 for sd, track in smoothed.items()}
    return {"AUPRC": max(by_auprc, key=by_auprc.get), "Pearson": max(by_pearson, key=by_pearson.get)}


def genome_library(positions: np.ndarray, chrom: str, length: int, copies: int, workdir: Path):
    """``chrom`` plus ``copies`` renamed copies of it, as an insertions BED, and its chrom sizes."""
    names = [chrom] + [f"{chrom}_copy{i}" for i in range(1, copies + 1)]
    bed = workdir / "genome.bed.gz"
    write_insertions_bed(bed, ((name, positions) for name in names))
    return bed, {name: length for name in names}


def macs3_tracks(bed: Path, chrom: str, sizes: dict, workdir: Path, genome_size: str = "hs"):
    """MACS3 on the whole genome-sized library; keep ``chrom``."""
    from atacdenoise.tracks.peaks import call_peaks

    outputs = call_peaks(bed, workdir / "macs3", sizes, genome_size=genome_size)
    called = interval_mask(read_peaks(outputs["narrowpeak"]).get(chrom), sizes[chrom])
    return read_bigwig(outputs["signal"], chrom), called


def model_tracks(onnx_path: str, bed: Path, chrom: str, sizes: dict, workdir: Path, genome_files: dict | None = None):
    """Denoise ``chrom`` of the genome-sized library (its depth measured on the whole of it, as for a user).

    ``genome_files`` (``fasta``, ``annotations``) go to ``denoise``: a model with
    genome channels reads what it needs, the others ignore them. The model runs as exported (float32): its
    card's numbers are the model's; what denoise's int8 default changes is bench_quantized.py's (<= 0.001).
    """
    from atacdenoise.denoise import denoise

    prefix = workdir / f"{Path(onnx_path).stem}.library"
    outputs = denoise(bed, onnx_path, sizes, prefix, progress=False, chroms=[chrom], precision="float32",
                      **(genome_files or {}))
    called = interval_mask(read_peaks(outputs["peaks"]).get(chrom), sizes[chrom])
    return read_bigwig(outputs["denoised"], chrom), read_bigwig(outputs["peakprob"], chrom), called


def hsc_annotation(data: Path) -> dict:
    """The HSC annotation files for ``denoise``: a model uses its channels, the others ignore them (with a note)."""
    folder = data / "annotation"
    names = ("tss", "cpg_islands", "ctcf_sites", "blacklist")
    return {"annotations": {name: str(folder / f"{name}.bed") for name in names if (folder / f"{name}.bed").exists()}}


def evaluate_depth(truth: Truth, p: float, models: dict[str, str], seed: int, chrom: str = "chr2",
                   baselines: bool = True, copies: int = 299) -> dict[str, dict]:
    sizes = truth.sizes
    insertions = noisy_insertions(truth.data, sizes, p, seed)
    true_cov, true_peaks, region = truth.chrom(chrom)
    rows: dict[str, Scored] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bed, genome_sizes = genome_library(insertions[chrom], chrom, sizes[chrom], copies, Path(tmp))
        if baselines:
            raw = raw_coverage(insertions[chrom], sizes[chrom])
            rows = {"raw": Scored()}
            rows["raw"].add(region, raw, true_cov, true_peaks)
            for metric, sd in best_sds(truth, raw_coverage(insertions["chr1"], sizes["chr1"])).items():
                name = f"gaussian (sd {sd}, best {metric} on chr1)"
                rows[name] = Scored()
                rows[name].add(region, gaussian_filter1d(raw, sd), true_cov, true_peaks)
            rows["macs3"] = Scored()
            signal, called = macs3_tracks(bed, chrom, genome_sizes, Path(tmp))
            rows["macs3"].add(region, signal, true_cov, true_peaks, called=called)
        for name, path in models.items():
            rows[name] = Scored()
            denoised, prob, called = model_tracks(path, bed, chrom, genome_sizes, Path(tmp), hsc_annotation(truth.data))
            rows[name].add(region, denoised, true_cov, true_peaks, score=prob, called=called)
    return {name: scored.metrics() for name, scored in rows.items()}


def print_table(results: dict[float, dict[str, dict]], depth_label=lambda p: f"{p * 5:g}M (p={p:g})") -> None:
    """Markdown table: one row per (depth, method), the metrics of COLUMNS (bench_channels shares it)."""
    print(f"| depth | method | {' | '.join(COLUMNS)} |")
    print("|" + " --- |" * (len(COLUMNS) + 2))
    for p, rows in results.items():
        for name, values in rows.items():
            cells = " | ".join(format_metric(values.get(c)) for c in COLUMNS)
            print(f"| {depth_label(p)} | {name} | {cells} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="0.1,0.2,1.0")
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH.onnx (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--copies", type=int, default=299,
                        help="renamed copies of chr2 beside it in the library (299: genome-sized; 0: chr2 alone)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models-only", action="store_true", help="skip raw, Gaussian and MACS3 (compare models fast)")
    args = parser.parse_args(argv)
    if not (args.data / "chrom.sizes").exists():
        print(f"bench_quality: real data not found at {args.data}; nothing to measure", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.ERROR)  # notes about annotation a model does not use are expected here
    models = dict(item.split("=", 1) for item in args.model)
    truth = Truth(args.data)
    results = {}
    for p in (float(x) for x in args.depths.split(",")):
        t0 = time.time()
        results[p] = evaluate_depth(truth, p, models, args.seed, baselines=not args.models_only, copies=args.copies)
        print(f"depth p={p:g} evaluated in {time.time() - t0:.0f} s", file=sys.stderr)
    print(f"Per-base metrics on chr2 (first 10 Mb) inside the labelled regions, truth = 80M-read library; "
          f"every method saw chr2 and {args.copies} renamed copies of it "
          f"({(args.copies + 1) * truth.sizes['chr2'] / 1e9:.2g} Gb)")
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
