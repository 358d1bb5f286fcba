#!/usr/bin/env python
"""Learning curve: the same architecture and training budget on more or less of the training chromosome.

Is the model short of data or of capacity? Widening it and training longer
both stalled (benchmarks/recipe_bundled_model.sh), and an ensemble of three
trained models gained 0.001 Pearson. This benchmark trains the bundled
model's architecture from fresh weights on the windows of the first 25 %, 50 %
and 100 % of the training chromosome(s) of a resampling source (``atacdenoise
prepare --resample``), with the same number of optimiser steps each, and scores
every model on the same validation windows per depth. A curve still rising at
100 % says more training data (chromosomes, cell types) is the way forward.

Units do not change between rows: targets stay per million insertions of the
whole clean library; only the windows that may be drawn are cut.

    python benchmarks/bench_learning_curve.py --train train.npz --val val.npz \\
        [--fractions 0.25,0.5,1] [--epochs 8] [--windows 6000]

About 10 minutes per row at the defaults on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from atacdenoise.models import build_model
from atacdenoise.search.data import load_pairs
from atacdenoise.search.candidate import SearchData, TrainSettings, train_child
from atacdenoise.search.resample import ChromSource, TrainingSource, is_source, load_source
from compare_checkpoints import depth_header, format_scores, predict, scores_per_depth  # benchmarks/ sibling

ARCHITECTURE = Path(__file__).resolve().parent / "searches" / "cpu_resample_dilated1d" / "best_model.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="a resampling source (prepare --resample)")
    parser.add_argument("--val", required=True, help="validation pairs (prepare's val.npz)")
    parser.add_argument("--config", type=Path, default=ARCHITECTURE, help="architecture JSON (fresh weights)")
    parser.add_argument("--fractions", default="0.25,0.5,1", help="leading fractions of each training chromosome")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--windows", type=int, default=6000, help="training windows per epoch (every row)")
    parser.add_argument("--loss", default="log-mse+pearson")
    parser.add_argument("--lr-max", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    args.fractions = [float(f) for f in args.fractions.split(",")]
    if not all(0 < f <= 1 for f in args.fractions):
        parser.error("--fractions must lie in (0, 1]")
    if not is_source(args.train):
        parser.error(f"--train {args.train}: not a resampling source (make one with 'atacdenoise prepare --resample')")
    return args


def leading_part(source: TrainingSource, fraction: float) -> TrainingSource:
    """The source with only the windows that lie wholly in the first ``fraction`` of each chromosome."""
    window_bins = source.spec.window_bins
    chroms = {}
    for name, chrom in source.chroms.items():
        last_bin = int(len(chrom.targets) * fraction)
        starts = chrom.starts[chrom.starts + window_bins <= last_bin]
        chroms[name] = ChromSource(chrom.positions, chrom.targets, chrom.peaks, starts)
    return TrainingSource(chroms, source.meta, f"{source.path} (first {fraction:.0%})")


def insertions_in_reach(source: TrainingSource) -> int:
    """Clean insertions from the first drawable window's start to the last one's end (what the model can learn from)."""
    total = 0
    bases = source.meta["bin_size"]
    for chrom in source.chroms.values():
        if len(chrom.starts):
            first, last = chrom.starts.min() * bases, (chrom.starts.max() + source.spec.window_bins) * bases
            total += int(np.searchsorted(chrom.positions, last) - np.searchsorted(chrom.positions, first))
    return total


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    source, val = load_source(args.train), load_pairs(args.val)
    config = json.loads(args.config.read_text())
    settings = TrainSettings(args.epochs, args.lr_max, 0.0, 0.9, 64, 1.0, 1.0, "cpu", args.loss, mirror=True)
    print(f"architecture {args.config.name} ({config['space']}), fresh weights; {args.epochs} epochs x "
          f"{args.windows} windows ({args.loss}, lr {args.lr_max} -> 0) per row; train {', '.join(source.chroms)}, "
          f"{len(val['inputs'])} validation windows", flush=True)
    rows = []
    for fraction in args.fractions:
        part = leading_part(source, fraction)
        torch.manual_seed(args.seed)
        data = SearchData.from_pairs({"source": part, "meta": part.meta}, val, args.windows, "cpu",
                                     draw_seed=args.seed)
        started = time.perf_counter()
        model, _ = train_child(build_model(config), data, settings, args.seed)
        signal, probability = predict(model, torch.from_numpy(val["inputs"]))
        row = {"fraction": fraction, "windows": int(sum(len(c.starts) for c in part.chroms.values())),
               "insertions": insertions_in_reach(part), "scores": scores_per_depth(signal, probability, val),
               "seconds": time.perf_counter() - started}
        rows.append(row)
        print(f"{fraction:.0%}: {row['windows']:,} window starts, {row['insertions']:,} clean insertions, "
              f"{row['seconds']:.0f} s", flush=True)
    print_table(rows)
    return rows


def print_table(rows: list[dict]) -> None:
    depths = list(rows[0]["scores"])
    print(f"\n| training part | window starts | clean insertions | {depth_header(depths)} |")
    print("|---" * (3 + len(depths)) + "|")
    for row in rows:
        print(f"| first {row['fraction']:.0%} | {row['windows']:,} | {row['insertions']:,} "
              f"| {format_scores(row['scores'])} |")


if __name__ == "__main__":
    main()
