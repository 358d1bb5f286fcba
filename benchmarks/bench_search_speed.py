#!/usr/bin/env python
"""Candidates trained per hour by a NASH search, one at a time vs several side by side (--parallel-children).

Throughput does not depend on what the windows contain, so the windows are
synthetic (heavy-tailed inputs, smoothed targets) at the real shape: 4096-bin
windows, 1024 centre bins, the default dilated1d space. Each setting runs the
same tiny search (a random initial model, then ``--iterations`` x
``--children``); the candidates must be the same (same morphisms, validation
losses equal up to the float rounding of a different CPU thread count). Run it on a GPU machine with ``--device cuda`` to see how many
small networks one GPU trains at once.

Usage: python benchmarks/bench_search_speed.py [--workers 1,2] [--device cpu] [--windows 512] [--epochs 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from atacdenoise.search.data import save_pairs
from atacdenoise.search.history import read_history
from atacdenoise.search.nash import resolve_device, run_search

WINDOW, TARGET = 4096, 1024


def synthetic_pairs(n: int, seed: int, chrom: str) -> dict:
    rng = np.random.default_rng(seed)
    inputs = rng.gamma(0.3, 2.0, size=(n, WINDOW)).astype(np.float32)
    smooth = np.stack([np.convolve(row, np.ones(9) / 9, mode="same") for row in inputs])
    flank = (WINDOW - TARGET) // 2
    targets = smooth[:, flank:flank + TARGET].astype(np.float32)
    meta = {"format": "atacdenoise-pairs/1", "bin_size": 25, "window_bins": WINDOW, "target_bins": TARGET,
            "representation": "coverage", "chroms": [chrom], "depths": [1.0]}
    return {"inputs": inputs, "targets": targets, "peaks": (targets > np.quantile(targets, 0.8)).astype(np.uint8),
            "depth": np.ones(n, np.float32), "chrom": np.full(n, chrom), "start": np.arange(n) * TARGET,
            "meta": meta}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated --parallel-children values")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--windows", type=int, default=512, help="training windows")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--children", type=int, default=4)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    settings = dict(space="dilated1d", iterations=args.iterations, children=args.children, epochs=args.epochs,
                    initial_random_draws=1, initial_epochs=args.epochs, seed=1, device=device, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_pairs(tmp / "train.npz", synthetic_pairs(args.windows, 1, "chrA"))
        save_pairs(tmp / "val.npz", synthetic_pairs(max(args.windows // 4, 16), 2, "chrB"))
        rows, histories = [], {}
        for workers in (int(w) for w in args.workers.split(",")):
            started = time.perf_counter()
            run_search(tmp / "train.npz", tmp / "val.npz", tmp / f"w{workers}", parallel_children=workers,
                       **settings)
            seconds = time.perf_counter() - started
            history = read_history(tmp / f"w{workers}" / "history.jsonl")
            trained = sum(not row["is_parent"] for row in history)
            histories[workers] = history
            rows.append((workers, trained, seconds))
    baseline = rows[0][2] / rows[0][1]
    first = histories[rows[0][0]]
    same = all([r["morphisms"] for r in h] == [r["morphisms"] for r in first] for h in histories.values())
    gap = max(abs(a["val_loss"] - b["val_loss"]) / abs(b["val_loss"]) for h in histories.values()
              for a, b in zip(h, first))
    print(f"device {device}; {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads; "
          f"{args.windows} training windows x {args.epochs} epoch(s) per candidate")
    print("| parallel children | candidates | seconds | candidates per hour | speed-up |")
    print("| --- | --- | --- | --- | --- |")
    for workers, trained, seconds in rows:
        print(f"| {workers} | {trained} | {seconds:.0f} | {3600 * trained / seconds:.0f} | "
              f"{baseline / (seconds / trained):.2f}x |")
    print(f"same candidates in every setting: {'yes' if same else 'NO'}; "
          f"largest relative difference in validation loss: {gap:.1e}")
    return 0 if same and gap < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
