#!/usr/bin/env python
"""The seed's Figure 4: one random-search budget for 1D, plain 2D and Hilbert-2D inputs.

The seed drew ten one-conv / one-dense networks (kernel 3/5/7, filters
4/8/16/32, hidden units 64/128/256), trained each for 20 epochs and reported the
average validation MSE per input layout: 250.8 (1D), 278.5 (row-major 2D) and
150.2 (2D along a Hilbert curve). Here every layout gets the *same* draws (draw
``i`` comes from the same seed in every arm, which also fixes its initial
weights and batch order) and the same optimiser as the NASH search (SGD with
Nesterov momentum, lr cosine-annealed 0.05 -> 0, see
``atacdenoise.search.candidate.train_child``), trained on MSE alone like the seed.
The 1D arm uses a Conv1d of kernel ``k*k`` (same weights per filter, same
receptive field in bins; see ``atacdenoise.models.layouts``).

Metric: MSE over the centre ``target_bins`` of the validation windows (the
seed's metric).

Data (``--representation``):

* ``peak-signal`` (the seed's, default): MACS3 narrowPeak signal, maximum per
  25 bp bin, 0 outside peaks, of a 10 % thinning of the deep library (input)
  and of the deep library (target); see ``seed_peak_signal.py``. ``--data hsc``
  (train chr1, validate chr2) or ``--data yeast`` (validate chrVII).
* ``coverage``: the HSC 5M insertions thinned to ``--depth`` vs the 80M
  library's coverage, per million (what the product trains on); without
  /work/shared/data the simulator stands in.

Training, the seed's way by default: a linear output layer (``--output
linear``), MSE, no gradient clipping (``--grad-clip 0``); why these matter is
in ``diagnose_hilbert2d.py`` (with the search's exp head and clipping at 1,
every arm stayed at the training mean's MSE).

Budget. The seed's (10 draws x 20 epochs on ~9,300 windows) costs hours on
two CPU cores; the script prints what it would cost from the times it
measures. ``--epochs 20 --train-windows 9000 --device cuda`` is the seed's.
Two rows that learn nothing (the training mean, the shallow input as is) are
printed to read the table against. ``--save-best DIR`` keeps the best
Hilbert-2D draw as a search folder (``atacdenoise search --initial-model``
grows it, as the seed's NASH grew its best random draw).

    python benchmarks/bench_input_layouts.py [--data hsc|yeast] [--representation peak-signal|coverage]
        [--draws 10] [--epochs 3] [--train-windows 9000] [--device auto] [--save-best DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.models import build_model
from atacdenoise.models.layouts import LAYOUT_LABELS, LAYOUTS, draw, layout_config
from atacdenoise.search.data import make_pairs
from atacdenoise.search.candidate import SearchData, TrainSettings, child_seed, train_child
from atacdenoise.search.nash import resolve_device
from atacdenoise.tracks.windows import WindowSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
import seed_peak_signal  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HSC = ROOT.parent / "shared" / "data" / "hsc"
SEED_AVG_MSE = {"1d": 250.7562382, "2d": 278.4532116, "hilbert": 150.1562584}  # the seed's Figure 4
SEED_BUDGET = "10 draws x 20 epochs on ~9,300 training windows"
SEED_DRAWS, SEED_EPOCHS, SEED_WINDOWS = 10, 20, 9300
SEED_DEPTH = 0.1  # the seed subsampled its BAM to 10 %


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10, help="random architectures per layout (seed: 10)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per draw (seed: 20)")
    parser.add_argument("--train-windows", type=int, default=9000, help="training windows (seed: ~9,300)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr-max", type=float, default=0.05)
    parser.add_argument("--data", choices=("auto", "hsc", "yeast", "sim"), default="auto",
                        help="auto: the HSC data when present, else the simulator (coverage only)")
    parser.add_argument("--representation", choices=("peak-signal", "coverage"), default="peak-signal",
                        help="peak-signal: the seed's (MACS3 peak signal per bin); coverage: the product's")
    parser.add_argument("--output", choices=("linear", "exp"), default="linear",
                        help="signal head: linear (the seed's) or exp (the product's)")
    parser.add_argument("--grad-clip", type=float, default=0.0, help="gradient norm clipping (0: off, the seed's)")
    parser.add_argument("--save-best", type=Path, help="write the best Hilbert-2D draw here as a search folder")
    parser.add_argument("--depth", type=float, default=SEED_DEPTH,
                        help="keep each noisy insertion with this probability (seed: 0.1)")
    parser.add_argument("--window-bins", type=int, default=4096)
    parser.add_argument("--target-bins", type=int, default=1024)
    parser.add_argument("--sim-chrom-length", type=int, default=4_000_000, help="simulator: bp per chromosome")
    parser.add_argument("--sim-fragments", type=int, default=400_000, help="simulator: fragments in total")
    args = parser.parse_args(argv)
    for name in ("draws", "epochs", "train_windows", "threads", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.depth <= 1:
        parser.error("--depth must lie in (0, 1]")
    return args


# ---------------------------------------------------------------- data

def hsc_pairs(args, spec: WindowSpec) -> tuple[dict, dict, str]:
    sources = (HSC / "noisy_5M.tn5_insertions.bed.gz", HSC / "clean_80M.coverage.bw", HSC / "clean_80M.peaks.bed")
    sizes = read_chrom_sizes(HSC / "chrom.sizes")
    train, val = both_splits(sources, sizes, args, spec)
    return train, val, f"HSC (noisy 5M thinned to {args.depth:.0%} vs clean 80M coverage), train chr1, val chr2"


def simulated_pairs(args, spec: WindowSpec, folder: Path) -> tuple[dict, dict, str]:
    from atacdenoise.tracks.simulate import simulate

    files = simulate(folder, n_chroms=2, chrom_length=args.sim_chrom_length, n_fragments=args.sim_fragments,
                     seed=args.seed, fastq=False)
    sizes = read_chrom_sizes(files["chrom_sizes"])
    sources = (files["bam"], files["truth_accessibility"], files["truth_peaks"])
    train, val = both_splits(sources, sizes, args, spec)
    return train, val, (f"simulated (2 x {args.sim_chrom_length:,} bp, {args.sim_fragments:,} fragments, thinned to "
                        f"{args.depth:.0%}; truth accessibility as target), train chr1, val chr2")


def both_splits(sources, sizes: dict, args, spec: WindowSpec) -> tuple[dict, dict]:
    """Sampled training windows on chr1, validation windows tiling chr2, both thinned to ``--depth``."""
    common = dict(depths=(args.depth,), spec=spec, seed=args.seed)
    train = make_pairs(*sources, sizes, ["chr1"], n_windows=args.train_windows, **common)
    val = make_pairs(*sources, sizes, ["chr2"], n_windows=None, **common)
    return train, val


def load_data(args, folder: Path) -> tuple[dict, dict, str]:
    spec = WindowSpec(args.window_bins, args.target_bins)
    if args.representation == "peak-signal":
        data = "hsc" if args.data == "auto" else args.data
        if data == "sim":
            raise SystemExit("--representation peak-signal needs --data hsc or yeast (real MACS3 peaks)")
        if not (seed_peak_signal.SHARED / data).is_dir():
            raise SystemExit(f"--representation peak-signal: {seed_peak_signal.SHARED / data} is absent "
                             "(use --representation coverage to run on the simulator)")
        out = ROOT / "benchmarks" / "out" / "seed_peak_signal" / f"{data}_{args.train_windows}_{args.seed}"
        train, val = seed_peak_signal.build(data, out, args.train_windows, spec, args.seed)
        return train, val, train["meta"]["source"]
    if args.data == "yeast":
        raise SystemExit("--data yeast: only with --representation peak-signal")
    use_hsc = args.data == "hsc" or (args.data == "auto" and HSC.is_dir())
    if args.data == "hsc" and not HSC.is_dir():
        raise SystemExit(f"--data hsc: {HSC} is absent")
    return hsc_pairs(args, spec) if use_hsc else simulated_pairs(args, spec, folder)


# ---------------------------------------------------------------- the search

def seeded_draws(n: int, seed: int) -> list[tuple[int, dict]]:
    """``(seed_i, draw_i)``: draw ``i`` and everything random in its training follow ``seed_i`` in every layout."""
    seeds = [child_seed(seed, 0, i) for i in range(n)]
    return [(s, draw(np.random.default_rng(s))) for s in seeds]


def train_draw(layout: str, draw_seed: int, arch: dict, data: SearchData, settings: TrainSettings,
               output: str = "exp"):
    torch.manual_seed(draw_seed)  # the same initial weights wherever the layers are alike
    config = layout_config(layout, arch["kernel"], arch["filters"], arch["units"], data.window_bins, data.target_bins)
    config["output"] = output
    return train_child(build_model(config), data, settings, draw_seed)


def run(args, data: SearchData, device: str) -> dict[str, list[dict]]:
    """Validation metrics of every draw in every layout: ``{layout: [metrics per draw]}``."""
    # peak_weight 0: the seed trained on MSE alone, so val_loss *is* the validation MSE.
    settings = TrainSettings(epochs=args.epochs, lr_max=args.lr_max, lr_min=0.0, momentum=0.9,
                             batch_size=args.batch_size, grad_clip=args.grad_clip, peak_weight=0.0, device=device,
                             loss="mse")
    draws = seeded_draws(args.draws, args.seed)
    results = {layout: [] for layout in LAYOUTS}
    best = None
    for i, (draw_seed, arch) in enumerate(draws):
        for layout in LAYOUTS:
            model, metrics = train_draw(layout, draw_seed, arch, data, settings, args.output)
            results[layout].append({**arch, **metrics})
            if layout == "hilbert" and metrics["val_loss"] is not None and (
                    best is None or metrics["val_loss"] < best[1]["val_loss"]):
                best = (model, metrics)
            print(f"draw {i + 1}/{len(draws)} {layout:>7}: kernel {arch['kernel']} filters {arch['filters']:>2} "
                  f"hidden {arch['units']:>3} -> val MSE {_fmt(metrics['val_loss'])} ({metrics['seconds']:.0f} s)",
                  flush=True)
    if args.save_best and best is not None:
        save_search_folder(args.save_best, *best)
    return results


def save_search_folder(folder: Path, model, metrics: dict) -> None:
    """The model as ``atacdenoise search --initial-model`` and ``registry export`` read it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "best_model.json").write_text(json.dumps(model.to_config(), indent=1))
    torch.save(model.cpu().state_dict(), folder / "best_model.pt")
    (folder / "summary.json").write_text(json.dumps({"best_val_loss": metrics["val_loss"],
                                                     "best_val_pearson": metrics["val_pearson"]}, indent=1))
    print(f"best Hilbert-2D draw (val MSE {metrics['val_loss']:.4g}) saved in {folder}")


# ---------------------------------------------------------------- report

def summarise(rows: list[dict]) -> dict:
    finished = [row for row in rows if row["val_loss"] is not None and math.isfinite(row["val_loss"])]
    best = min(finished, key=lambda row: row["val_loss"]) if finished else None
    return {
        "mean_mse": float(np.mean([row["val_loss"] for row in finished])) if finished else None,
        "best_mse": best["val_loss"] if best else None,
        "best_draw": f"k{best['kernel']} f{best['filters']} h{best['units']}" if best else "-",
        "mean_pearson": _mean([row["val_pearson"] for row in finished]),
        "diverged": len(rows) - len(finished),
        "seconds": sum(row["seconds"] for row in rows),
    }


def reference_mses(train: dict, val: dict) -> dict[str, float]:
    """Validation MSE of two predictors that learn nothing, to read the table against:
    the mean training target everywhere, and the noisy window's centre as it is (inputs
    and targets share their scale, coverage per million insertions)."""
    targets = val["targets"].astype(np.float64)
    flank = (val["inputs"].shape[1] - targets.shape[1]) // 2
    centre = val["inputs"][:, flank:flank + targets.shape[1]]
    return {"constant (training mean)": float(np.mean((targets - train["targets"].mean()) ** 2)),
            "noisy input as is": float(np.mean((centre - targets) ** 2))}


def print_report(results: dict[str, list[dict]], summary: dict[str, dict], references: dict[str, float]) -> None:
    print("\nper draw (val MSE over the centre bins):")
    print(f"| draw | kernel | filters | hidden | {' | '.join(LAYOUT_LABELS[layout] for layout in LAYOUTS)} |")
    print("|---" * (4 + len(LAYOUTS)) + "|")
    for i, first in enumerate(results[LAYOUTS[0]]):
        mses = " | ".join(_fmt(results[layout][i]["val_loss"]) for layout in LAYOUTS)
        print(f"| {i + 1} | {first['kernel']} | {first['filters']} | {first['units']} | {mses} |")

    reference = summary["hilbert"]["mean_mse"]
    print("\n| layout | mean val MSE | best val MSE | best draw | mean / Hilbert | mean Pearson | diverged "
          "| seconds | seed avg MSE | seed / Hilbert |")
    print("|---" * 10 + "|")
    for layout in LAYOUTS:
        s = summary[layout]
        ratio = s["mean_mse"] / reference if s["mean_mse"] is not None and reference else None
        print(f"| {LAYOUT_LABELS[layout]} | {_fmt(s['mean_mse'])} | {_fmt(s['best_mse'])} | {s['best_draw']} "
              f"| {_fmt(ratio, '.2f')} | {_fmt(s['mean_pearson'], '.3f')} | {s['diverged']} | {s['seconds']:.0f} "
              f"| {SEED_AVG_MSE[layout]:.1f} | {SEED_AVG_MSE[layout] / SEED_AVG_MSE['hilbert']:.2f} |")
    for name, mse in references.items():
        print(f"| {name} | {_fmt(mse)} | | | {_fmt(mse / reference if reference else None, '.2f')} | | | | | |")


def print_cost(results: dict[str, list[dict]], args) -> None:
    """What the seed's budget would cost here, from the measured seconds per window-epoch."""
    seconds = sum(row["seconds"] for rows in results.values() for row in rows)
    done = args.draws * args.epochs * args.train_windows
    seed = SEED_DRAWS * SEED_EPOCHS * SEED_WINDOWS
    print(f"\nbudget: this run {args.draws} draws x {args.epochs} epochs x {args.train_windows:,} windows per layout "
          f"took {seconds / 60:.1f} min of training; the seed's ({SEED_BUDGET}) would take about "
          f"{seconds * seed / done / 3600:.1f} h on this device")


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _fmt(value, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def main(argv=None) -> dict[str, dict]:
    """Run the benchmark and print its tables; return the summary per layout."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train, val, source = load_data(args, Path(tmp))
    references = reference_mses(train, val)
    data = SearchData.from_pairs(train, val, None, device)
    print(f"data: {source}; {len(data.train_x):,} training and {len(data.val_x):,} validation windows of "
          f"{data.window_bins} bins (centre {data.target_bins} scored), prepared in "
          f"{time.perf_counter() - started:.0f} s")
    print(f"budget: {args.draws} draws x {args.epochs} epochs per layout, batch {args.batch_size}, SGD Nesterov "
          f"lr {args.lr_max} -> 0 cosine, MSE loss, {args.output} output, gradient clipping "
          f"{args.grad_clip or 'off'}; device {device}, {args.threads} CPU thread(s) "
          f"(the seed: {SEED_BUDGET})", flush=True)
    results = run(args, data, device)
    summary = {layout: summarise(rows) for layout, rows in results.items()}
    print_report(results, summary, references)
    print_cost(results, args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return summary


if __name__ == "__main__":
    main()
