#!/usr/bin/env python
"""The seed's own data representation, built from the real data in ../shared/data.

The seed subsampled a deep library to 10 % with samtools, called MACS2 peaks on
both, and binned the narrowPeak *signal* at 25 bp (maximum per bin, 0 outside
peaks): input = the 10 % library's peak signal, target = the deep library's.
This module builds the same from the two real data sets and writes pairs files
(``train.npz``, ``val.npz``, the format of ``atacdenoise prepare``, with
``meta["representation"] = "peak-signal"``) that ``bench_input_layouts.py`` and
``atacdenoise search`` read:

* HSC: the deep library is the 80M-read one; its insertions are recovered
  exactly from its coverage bigWig (``tracks.deconvolve``, inside the labelled
  regions), and the shallow twin keeps each with probability 0.1 (the seed's
  samtools ``-s 0.1``). MACS3 runs on both with the project's settings
  (``atacdenoise peaks``). Train chr1, validate chr2; windows whose predicted
  centre leaves the labelled regions are dropped (zeros there mean "not measured").
* yeast: ``benchmarks/prepare_yeast.sh`` made the deep insertions, the 10 %
  fragment twin and MACS3 peaks on both (the data README's flags); train on
  every chromosome but chrVII, validate on chrVII; the chrXII rDNA pile-up is
  masked as in that script.

Training windows are sampled uniformly (the seed's way), validation windows
tile the validation chromosome. Peak labels (the peak head's targets) are the
deep library's peaks.

    python benchmarks/seed_peak_signal.py --data hsc|yeast [--train-windows 9000] --out DIR
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.narrowpeak import read_peaks
from atacdenoise.search.data import PAIRS_FORMAT, save_pairs
from atacdenoise.search.targets import peak_label_bins, scored_bins, windows_in_regions
from atacdenoise.tracks.bin_grid import n_bins
from atacdenoise.tracks.binning import peak_signal_bins
from atacdenoise.tracks.windows import WindowSpec, extract, sample_starts, tile_starts

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
BIN_SIZE = 25
SEED_FRACTION = 0.1


def hsc_twins(work: Path, seed: int = 0) -> dict:
    """Deep (80M) and 10 % insertions of the HSC data, and MACS3 peaks on each."""
    from atacdenoise.io.reads import write_insertions_bed
    from atacdenoise.tracks.deconvolve import insertions_from_coverage
    from atacdenoise.tracks.peaks import call_peaks
    from atacdenoise.tracks.subsample import thin_positions

    hsc = SHARED / "hsc"
    sizes = read_chrom_sizes(hsc / "chrom.sizes")
    regions = read_peaks(hsc / "clean_80M.labelled_regions.bed")
    deep = dict(insertions_from_coverage(hsc / "clean_80M.coverage.bw", sizes, regions=regions))
    rng = np.random.default_rng(seed)
    shallow = {chrom: thin_positions(positions, SEED_FRACTION, rng) for chrom, positions in deep.items()}
    peaks = {}
    for name, twin in (("deep", deep), ("shallow", shallow)):
        bed = work / f"hsc_{name}.insertions.bed.gz"
        write_insertions_bed(bed, iter(twin.items()))
        peaks[name] = call_peaks(bed, work / f"hsc_{name}.macs", sizes)["narrowpeak"]
    print(f"HSC: {sum(map(len, deep.values())):,} deep insertions, {sum(map(len, shallow.values())):,} in the "
          f"10 % twin; MACS3 peaks: {_count_lines(peaks['deep']):,} deep, {_count_lines(peaks['shallow']):,} shallow")
    return {"sizes": sizes, "deep_peaks": peaks["deep"], "shallow_peaks": peaks["shallow"], "regions": regions,
            "train": ["chr1"], "val": ["chr2"], "source": "HSC 80M library (insertions recovered from its "
            "coverage) and its 10 % thinning; MACS3 peak signal; train chr1, val chr2"}


def yeast_twins(work: Path) -> dict:
    """The yeast library's deep and 10 % twins as ``prepare_yeast.sh`` leaves them (run there if absent)."""
    yeast = work / "yeast"
    if not (yeast / "shallow_0.1.macs.narrowPeak").exists():
        subprocess.run(["bash", str(ROOT / "benchmarks" / "prepare_yeast.sh"), str(yeast)], check=True)
    sizes = read_chrom_sizes(yeast / "chrom.sizes")
    regions = read_peaks(yeast / "regions.bed")  # every chromosome minus the chrXII rDNA pile-up
    val = ["chrVII"]
    return {"sizes": sizes, "deep_peaks": yeast / "deep.macs.narrowPeak",
            "shallow_peaks": yeast / "shallow_0.1.macs.narrowPeak", "regions": regions,
            "train": [c for c in sizes if c not in val], "val": val,
            "source": "yeast deep library and its 10 % fragment twin; MACS3 peak signal; train all but chrVII "
                      "(rDNA masked), val chrVII"}


def peak_signal_pairs(twins: dict, chroms: list[str], n_windows: int | None, spec: WindowSpec, seed: int) -> dict:
    """Windows of the shallow twin's peak signal (inputs) and the deep twin's (targets) on ``chroms``."""
    sizes = {c: twins["sizes"][c] for c in chroms}
    bins = {c: n_bins(n, BIN_SIZE) for c, n in sizes.items()}
    if n_windows is None:
        plan = {c: tile_starts(n, spec) for c, n in bins.items()}
    else:
        # Drawn with room to spare: windows whose centre leaves the scored regions are dropped below.
        drawn = sample_starts(bins, 2 * n_windows, spec, np.random.default_rng(seed))
        plan = {c: np.array([s for chrom, s in drawn if chrom == c], np.int64) for c in chroms}
    shallow, deep = read_peaks(twins["shallow_peaks"]), read_peaks(twins["deep_peaks"])
    parts = []
    for chrom, starts in plan.items():
        scored = scored_bins(twins["regions"], chrom, sizes[chrom], BIN_SIZE)
        starts = starts[windows_in_regions(starts, spec, scored)]
        target_starts = starts + spec.flank
        parts.append({
            "inputs": extract(peak_signal_bins(shallow.get(chrom), sizes[chrom], BIN_SIZE), starts, spec.window_bins),
            "targets": extract(peak_signal_bins(deep.get(chrom), sizes[chrom], BIN_SIZE), target_starts,
                               spec.target_bins),
            "peaks": extract(peak_label_bins(deep.get(chrom), sizes[chrom], BIN_SIZE), target_starts,
                             spec.target_bins).astype(np.uint8),
            "chrom": np.full(len(starts), chrom), "start": starts})
    pairs = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    if n_windows is not None:  # n sampled windows in random order, as prepare writes them
        order = np.random.default_rng(seed + 1).permutation(len(pairs["inputs"]))[:n_windows]
        pairs = {key: value[order] for key, value in pairs.items()}
    pairs["depth"] = np.full(len(pairs["inputs"]), SEED_FRACTION, np.float32)
    pairs["meta"] = {"format": PAIRS_FORMAT, "bin_size": BIN_SIZE, "window_bins": spec.window_bins, "target_bins": spec.target_bins,
                     "representation": "peak-signal", "depths": [SEED_FRACTION], "chroms": chroms,
                     "channels": [], "tiled": n_windows is None, "seed": seed, "source": twins["source"]}
    return pairs


def build(data: str, out: Path, train_windows: int, spec: WindowSpec = WindowSpec(), seed: int = 0) -> tuple[dict, dict]:
    """Build (or load, when ``out`` has them) the train and validation pairs of ``data``; return both."""
    from atacdenoise.search.data import load_pairs

    if (out / "train.npz").exists() and (out / "val.npz").exists():
        return load_pairs(out / "train.npz"), load_pairs(out / "val.npz")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        twins = hsc_twins(Path(tmp), seed) if data == "hsc" else yeast_twins(ROOT / "benchmarks" / "out")
        train = peak_signal_pairs(twins, twins["train"], train_windows, spec, seed)
        val = peak_signal_pairs(twins, twins["val"], None, spec, seed)
    save_pairs(out / "train.npz", train)
    save_pairs(out / "val.npz", val)
    return train, val


def describe(pairs: dict) -> str:
    targets, inputs = pairs["targets"], pairs["inputs"]
    return (f"{len(inputs):,} windows; target mean {targets.mean():.2f}, sd {targets.std():.2f}, max "
            f"{targets.max():.1f}, {np.mean(targets > 0):.1%} of bins in deep peaks; input "
            f"{np.mean(inputs > 0):.1%} of bins in shallow peaks")


def _count_lines(path) -> int:
    with open(path) as handle:
        return sum(1 for _ in handle)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("hsc", "yeast"), required=True)
    parser.add_argument("--train-windows", type=int, default=9000, help="sampled training windows (the seed: ~9,300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    train, val = build(args.data, args.out, args.train_windows, seed=args.seed)
    print(f"train: {describe(train)}\nval: {describe(val)}")


if __name__ == "__main__":
    main()
