#!/usr/bin/env python
"""Train one fixed architecture from scratch (one SGDR cycle) and save it as a search folder.

The bundled model's starting point was made this way: the architecture of
benchmarks/searches/nash_dilated1d/best_model.json, trained on the resampling
source for 10 epochs (log-mse, lr 0.05, 6000 windows per epoch), then 4 epochs
(log-mse+pearson, lr 0.02, 3000 windows per epoch), then grown by
``atacdenoise search --initial-model`` (benchmarks/searches/cpu_resample_dilated1d).
Those steps predate mirrored training windows: repeat them with --no-mirror.

Usage:
  python benchmarks/train_architecture.py --config ARCH.json --train train.npz --val val.npz \\
      --epochs 10 --loss log-mse --lr-max 0.05 --out DIR [--init DIR] [--windows 6000] [--seed 0]
A model that reads fewer input channels than the data holds (a counts-only
start on data with genome channels) gets the missing ones with zero weights.
Writes DIR/best_model.json + DIR/best_model.pt (what --initial-model and 'registry export' read)
and prints the validation metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from atacdenoise.errors import InputError
from atacdenoise.models import build_model
from atacdenoise.models.common import set_peak_prior
from atacdenoise.models.morphisms import dilated_widen
from atacdenoise.search.data import load_pairs
from atacdenoise.search.history import load_search_model
from atacdenoise.search.candidate import SearchData, TrainSettings, train_child
from atacdenoise.search.nash import as_pairs, fit_to_channels
from atacdenoise.tracks.subsample import parse_fractions


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="architecture JSON (fresh weights)")
    parser.add_argument("--init", help="start from this search folder's model instead of --config")
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--loss", default="log-mse")
    parser.add_argument("--lr-max", type=float, default=0.05)
    parser.add_argument("--windows", type=int, help="training windows per epoch (default: all / the source's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-mirror", action="store_true", help="no reversed training windows")
    parser.add_argument("--widen", type=int, help="first widen a dilated1d model to this many channels (Net2Wider, "
                                                  "function-preserving)")
    parser.add_argument("--widen-seed", type=int, default=0, help="seed of the replicated units' random split")
    parser.add_argument("--depths", help="comma-separated depths: draw training windows only between the lowest and "
                                          "highest of these (a resampling source; e.g. 0.1 for a 0.5M specialist)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = load_search_model(args.init) if args.init else build_model(json.loads(Path(args.config).read_text()))
    if args.widen:
        model = dilated_widen(model, np.random.default_rng(args.widen_seed), width=args.widen)
    train = as_pairs(args.train)
    model = fit_to_channels(model, train["meta"])  # genome channels in the data: added with zero weights
    if args.depths:
        if "source" not in train:
            parser.error(f"--depths needs a resampling source as --train, not {args.train}")
        try:
            train["source"].meta["depths"] = parse_fractions(args.depths)  # as 'prepare --depths' reads them
        except InputError as err:
            parser.error(f"--depths: {err}")
    data = SearchData.from_pairs(train, load_pairs(args.val), args.windows, "cpu",
                                 draw_seed=args.seed)
    if not args.init:  # fresh weights: the peak head starts at the labels' base rate (see set_peak_prior)
        set_peak_prior(model, float(data.train_peaks.float().mean()))
    settings = TrainSettings(args.epochs, args.lr_max, 0.0, 0.9, 64, 1.0, 1.0, "cpu", args.loss,
                             mirror=not args.no_mirror)
    model, metrics = train_child(model, data, settings, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "best_model.json").write_text(json.dumps(model.to_config(), indent=1))
    torch.save(model.state_dict(), args.out / "best_model.pt")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
