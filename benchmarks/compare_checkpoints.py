#!/usr/bin/env python
"""Validation Pearson and AUPRC per depth of trained models side by side, and of their average.

A quick check between training runs (seconds, bin level, on prepare's
val.npz), before the per-base evaluation of bench_quality.py. The last row
averages the models' signals and peak probabilities: what an ensemble of them
would score.

    python benchmarks/compare_checkpoints.py --val val.npz RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds best_model.json + best_model.pt (a search folder, or
train_architecture.py's --out).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from atacdenoise.metrics import auprc, format_metric, pearson
from atacdenoise.search.data import load_pairs
from atacdenoise.search.history import load_search_model


@torch.no_grad()
def predict(model: torch.nn.Module, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(signal, peak probability)`` of ``model`` on every window."""
    model.eval()
    outputs = [model(inputs[i:i + 256]) for i in range(0, len(inputs), 256)]
    return (np.concatenate([o[0].numpy() for o in outputs]),
            np.concatenate([torch.sigmoid(o[1]).numpy() for o in outputs]))


def scores_per_depth(signal: np.ndarray, probability: np.ndarray, val: dict) -> dict[float, tuple]:
    """``{depth: (Pearson, AUPRC)}`` over the validation windows' centre bins."""
    scores = {}
    for depth in sorted(set(val["depth"].tolist())):
        rows = val["depth"] == depth
        scores[depth] = (pearson(signal[rows], val["targets"][rows]), auprc(probability[rows], val["peaks"][rows]))
    return scores


def format_scores(scores: dict[float, tuple]) -> str:
    return " | ".join(f"{format_metric(p)} / {format_metric(a)}" for p, a in scores.values())


def depth_header(depths) -> str:
    return " | ".join(f"depth {d:g} Pearson / AUPRC" for d in depths)


def main(argv=None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    val = load_pairs(args.val)
    inputs = torch.from_numpy(val["inputs"])
    predictions = {run: predict(load_search_model(run), inputs) for run in args.runs}
    if len(predictions) > 1:
        predictions["mean of the above"] = tuple(np.mean([p[i] for p in predictions.values()], axis=0)
                                                 for i in range(2))
    table = {name: scores_per_depth(signal, probability, val) for name, (signal, probability) in predictions.items()}
    depths = list(next(iter(table.values())))
    print(f"| model | {depth_header(depths)} |")
    print("|---" * (1 + len(depths)) + "|")
    for name, scores in table.items():
        print(f"| {name} | {format_scores(scores)} |")
    return table


if __name__ == "__main__":
    main()
