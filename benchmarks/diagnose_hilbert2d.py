#!/usr/bin/env python
"""Why the seed's Hilbert-2D network learned nothing here, with the evidence: a before/after ladder.

The same Hilbert-2D network is trained under a ladder of settings, each
changing one thing, with the search's own training loop
(``atacdenoise.search.candidate.train_child``: SGD Nesterov, lr 0.05 -> 0 cosine,
batch 64). Every epoch it records the training loss, the validation MSE in
original units (the seed's metric) and Pearson, the median gradient norm
before clipping, the share of steps the clipping changed, and the share of
dead units (readout units that are zero on every validation window: dense
ReLU units, or the per-bin readout's channels).

Two data sets, both HSC (train chr1, validate chr2):

* ``coverage``: the 5M insertions thinned to 10 % vs the 80M library's
  coverage, per million (what ``atacdenoise prepare`` makes, and where the
  Hilbert-2D search scored Pearson 0.51 and AUPRC at the base rate);
* ``peak-signal``: the seed's representation (``seed_peak_signal.py``: MACS3
  peak signal of the 80M library and of its 10 % thinning, 0 outside peaks).

Network: the seed's random-search shape, one Conv2D (16 filters, 3x3) -> one
Dense (128 units) -> heads, unless the row says "per-bin readout" (three 3x3
convs of 16 filters, the input image concatenated into the third, heads per bin).

Prints one table per row (per epoch) and a summary table; writes the curves
to ``--plot`` (PNG).

    python benchmarks/diagnose_hilbert2d.py [--train-windows 2000] [--epochs 5] [--plot benchmarks/figures/diagnose_hilbert2d.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_input_layouts  # noqa: E402
import seed_peak_signal  # noqa: E402
from atacdenoise.metrics import pearson  # noqa: E402
from atacdenoise.models import build_model, hilbert2d  # noqa: E402
from atacdenoise.search.candidate import SearchData, TrainSettings, train_child  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Row:
    data: str  # "coverage" or "peak-signal"
    label: str
    readout: str = "dense"
    output: str = "exp"
    loss: str = "mse"
    grad_clip: float = 1.0


LADDER = (
    Row("coverage", "before: the search's settings (exp head, MSE, clip 1)"),
    Row("coverage", "no clipping", grad_clip=0.0),
    Row("coverage", "linear head (the seed's), no clipping", output="linear", grad_clip=0.0),
    Row("coverage", "linear head, clip 1", output="linear"),
    Row("coverage", "exp head, log-MSE (tamed loss scale)", loss="log-mse"),
    Row("coverage", "after: per-bin readout, log-MSE + Pearson", readout="per-bin", loss="log-mse+pearson"),
    Row("coverage", "after: per-bin readout, linear head, MSE, no clipping", readout="per-bin", output="linear",
        grad_clip=0.0),
    Row("peak-signal", "exp head, MSE, clip 1", ),
    Row("peak-signal", "after: the seed's setup (linear head, MSE, no clipping)", output="linear", grad_clip=0.0),
    Row("peak-signal", "per-bin readout, linear head, MSE, no clipping", readout="per-bin", output="linear",
        grad_clip=0.0),
)


def model_for(row: Row, window_bins: int, target_bins: int) -> torch.nn.Module:
    if row.readout == "per-bin":
        layers = [hilbert2d.conv_layer(16, 3), hilbert2d.conv_layer(16, 3), hilbert2d.conv_layer(16, 3, concat=0)]
    else:
        layers = [hilbert2d.conv_layer(16, 3), hilbert2d.dense_layer(128)]
    config = hilbert2d.make_config(layers, window_bins, target_bins)
    config.update(readout=row.readout, output=row.output)
    torch.manual_seed(0)
    return build_model(config)


@torch.no_grad()
def validation_state(model, data: SearchData) -> dict:
    """Validation MSE (original units), Pearson and the share of dead readout units."""
    model.eval()
    signals, alive = [], None
    for first in range(0, len(data.val_x), 128):
        x = data.val_x[first:first + 128]
        features = model.readout_features(x)
        signal, _ = model(x)
        signals.append(signal)
        # A unit is alive when it is positive somewhere: (N, U) dense units, (N, C, T) per-bin channels.
        active = (features > 0).flatten(2).any(-1).any(0) if features.dim() == 3 else (features > 0).any(0)
        alive = active if alive is None else alive | active
    model.train()
    signal = torch.cat(signals)
    return {"val_mse": float(((signal - data.val_y) ** 2).mean()),
            "val_pearson": pearson(signal.numpy(), data.val_y.numpy()),
            "dead": float(1.0 - alive.float().mean())}


def train_row(row: Row, data: SearchData, epochs: int) -> list[dict]:
    """Per-epoch records of one row of the ladder."""
    settings = TrainSettings(epochs=epochs, lr_max=0.05, lr_min=0.0, momentum=0.9, batch_size=64,
                             grad_clip=row.grad_clip, peak_weight=0.0, device="cpu", loss=row.loss)
    steps: dict[int, list] = {}
    records = []
    started = time.perf_counter()

    def on_step(epoch, loss, grad_norm):
        steps.setdefault(epoch, []).append((loss, grad_norm))

    def on_epoch(epoch, model, train_loss):
        norms = np.array([norm for _, norm in steps.get(epoch, [])])
        finite = norms[np.isfinite(norms)]
        clipped = float(np.mean(norms > row.grad_clip)) if row.grad_clip and len(norms) else 0.0
        records.append({"epoch": epoch + 1, "train_loss": train_loss,
                        "grad_norm": float(np.median(finite)) if len(finite) else float("nan"),
                        "clipped": clipped, **validation_state(model, data),
                        "seconds": time.perf_counter() - started})

    model = model_for(row, data.window_bins, data.target_bins)
    records.append({"epoch": 0, "train_loss": float("nan"), "grad_norm": float("nan"), "clipped": 0.0,
                    **validation_state(model, data), "seconds": 0.0})
    _, metrics = train_child(model, data, settings, seed=0, on_step=on_step, on_epoch=on_epoch)
    if metrics["val_loss"] is None:  # diverged: train_child stopped early
        records.append({"epoch": len(records), "train_loss": float("nan"), "grad_norm": float("nan"),
                        "clipped": 0.0, "val_mse": float("nan"), "val_pearson": float("nan"),
                        "dead": float("nan"), "seconds": time.perf_counter() - started, "diverged": True})
    return records


def load(kind: str, train_windows: int) -> tuple[SearchData, dict]:
    """The data set ``kind`` and its two reference MSEs (the training mean; the shallow input as is)."""
    if kind == "coverage":
        args = bench_input_layouts.parse_args(["--data", "hsc", "--representation", "coverage",
                                               "--train-windows", str(train_windows)])
        with tempfile.TemporaryDirectory() as tmp:
            train, val, _ = bench_input_layouts.load_data(args, Path(tmp))
    else:
        train, val = seed_peak_signal.build("hsc", ROOT / "benchmarks" / "out" / "seed_peak_signal" / "hsc_9000_0", 9000)
        train = {key: value[:train_windows] if key != "meta" else value for key, value in train.items()}
    refs = bench_input_layouts.reference_mses(train, val)
    references = {"training mean": refs["constant (training mean)"], "shallow input as is": refs["noisy input as is"]}
    return SearchData.from_pairs(train, val, None, "cpu"), references


def print_row(row: Row, records: list[dict]) -> None:
    print(f"\n{row.data}: {row.label}")
    print("| epoch | train loss | val MSE | val Pearson | median grad norm | steps clipped | dead units |")
    print("|---|---|---|---|---|---|---|")
    for r in records:
        print(f"| {r['epoch']} | {r['train_loss']:.4g} | {r['val_mse']:.4g} | {r['val_pearson']:.3f} "
              f"| {r['grad_norm']:.3g} | {r['clipped']:.0%} | {r['dead']:.0%} |", flush=True)


def print_summary(results: list[tuple[Row, list[dict]]], references: dict) -> None:
    print("\nsummary (last epoch; val MSE in original units)")
    print("| data | setting | val MSE | / training mean | val Pearson | median grad norm | steps clipped "
          "| dead units | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row, records in results:
        r = records[-1]
        mean_mse = references[row.data]["training mean"]
        print(f"| {row.data} | {row.label} | {r['val_mse']:.4g} | {r['val_mse'] / mean_mse:.3g} "
              f"| {r['val_pearson']:.3f} | {r['grad_norm']:.3g} | {r['clipped']:.0%} | {r['dead']:.0%} "
              f"| {r['seconds']:.0f} |")
    for data, refs in references.items():
        for name, mse in refs.items():
            print(f"| {data} | reference: {name} | {mse:.4g} | {mse / refs['training mean']:.2f} | | | | | |")


def plot(results: list[tuple[Row, list[dict]]], references: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    for col, data in enumerate(("coverage", "peak-signal")):
        for row, records in results:
            if row.data != data:
                continue
            epochs = [r["epoch"] for r in records]
            axes[0, col].plot(epochs, [r["val_mse"] / references[data]["training mean"] for r in records],
                              marker="o", label=row.label)
            axes[1, col].plot(epochs[1:], [r["grad_norm"] for r in records[1:]], marker="o", label=row.label)
        axes[0, col].axhline(1.0, color="grey", linestyle="--", linewidth=1, label="training mean")
        shallow = references[data]["shallow input as is"] / references[data]["training mean"]
        axes[0, col].axhline(shallow, color="black", linestyle=":", linewidth=1, label="shallow input as is")
        axes[0, col].set(title=f"{data}: validation MSE / training-mean MSE", xlabel="epoch", ylim=(0, 1.3))
        axes[1, col].set(title=f"{data}: median gradient norm before clipping", xlabel="epoch", yscale="log")
        axes[1, col].axhline(1.0, color="grey", linestyle="--", linewidth=1)
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"\ncurves: {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-windows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "figures" / "diagnose_hilbert2d.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    datasets = {kind: load(kind, args.train_windows) for kind in ("coverage", "peak-signal")}
    references = {kind: refs for kind, (_, refs) in datasets.items()}
    print(f"HSC, train chr1 ({args.train_windows:,} windows), validate chr2; {args.epochs} epochs per row")
    results = []
    for row in LADDER:
        records = train_row(row, datasets[row.data][0], args.epochs)
        print_row(row, records)
        results.append((row, records))
    print_summary(results, references)
    plot(results, references, args.plot)


if __name__ == "__main__":
    main()
