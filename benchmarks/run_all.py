#!/usr/bin/env python
"""Run every benchmark and write benchmarks/RESULTS.md (also printed).

Sections: denoising quality on the HSC data (bench_quality.py), what genome
channels buy on HSC and yeast (bench_channels.py, models in benchmarks/models/
made by benchmarks/recipe_channel_models.sh) and what they cost at denoising
time (bench_denoise_channels.py), an oracle's
ceiling on the same data (bench_ceiling.py), the seed's
Figure 4 (bench_input_layouts.py, HSC and yeast, with the diagnosis of why the
seed's network first learned nothing: diagnose_hilbert2d.py) and Figure 8 (from
the committed search histories in benchmarks/searches/; seed_figure8.sh makes the
peak-signal ones), search speed on GPU vs CPU (same histories),
a learning curve on the training chromosome (bench_learning_curve.py, about
30 minutes), binning speed vs deepTools (bench_binning.py), and denoising speed
(bench_denoise.py), ATAC QC of the real libraries (bench_qc.py), the real yeast genome end to end
(bench_real_genome.py: reads made at the real fragments, through `pipeline --samplesheet`, about 5 minutes),
and time and memory at genome scale (bench_genome_scale.py: a synthetic 250 Mb chromosome, beside MACS3,
about 10 minutes). Seeds are fixed inside each script. States the machine and date.

Usage: python benchmarks/run_all.py [--skip quality,channels_hsc,channels_yeast,ceiling,diagnose,layouts,layouts_yeast,figure8,
                                            speed,parallel,curve,binning,denoise,denoise_channels,qc,metrics,
                                            real_genome,genome_scale]
       python benchmarks/run_all.py --only curve   # re-run one section, keep the others as they are
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODELS = {
    "AtacWorks-architecture baseline": HERE / "models" / "atacworks_baseline.onnx",
    "seed's Hilbert-2D NASH model (before the fix)": HERE / "models" / "nash_hilbert2d_seed.onnx",
    "Hilbert-2D model (per-bin readout)": REPO / "registry" / "models" / "atac-denoiser-hilbert2d.onnx",
    "bundled default model": REPO / "registry" / "models" / "atac-denoiser.onnx",
    "bundled counts-only model": REPO / "registry" / "models" / "atac-denoiser-counts.onnx",
}
SEARCHES = HERE / "searches"
HEADER = ("# atacdenoise benchmark results\n\nMeasured {date} on {machine}; "
          "training runs in benchmarks/searches/ were made on one NVIDIA H100 unless their device says cpu. "
          "cpu_resample_dilated1d trains on the resampling source (fresh noisy inputs every epoch) and continues "
          "from a model trained 14 epochs on it (--initial-model); the others on frozen pairs. The bundled model is "
          "that search's best trained two more SGDR cycles (benchmarks/recipe_bundled_model.sh).\n")


def run_script(name: str, *args: str) -> str:
    """Run one benchmark script; return its stdout (the table), or the reason it failed."""
    print(f"running {name} {' '.join(args)} ...", file=sys.stderr, flush=True)
    result = subprocess.run([sys.executable, str(HERE / name), *args], capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"`{name}` failed (exit {result.returncode}): {tail}\n"
    return result.stdout


def read_history(name: str) -> list[dict]:
    path = SEARCHES / name / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def figure8_table() -> str:
    """Training and validation loss of each iteration's chosen model (the seed's Figure 8)."""
    lines = ["| search | iteration | parameters | train loss | validation loss | val Pearson | val AUPRC |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("seed_hilbert2d_peak_signal_hsc", "seed_hilbert2d_peak_signal_yeast", "cpu_resample_dilated1d",
                 "nash_dilated1d", "nash_hilbert2d_mse", "nash_hilbert2d_logmse"):
        for row in read_history(name):
            if row.get("chosen"):
                lines.append(f"| {name} | {row['iteration']} | {row['parameters']:,} | {_num(row['train_loss'])} | "
                             f"{_num(row['val_loss'])} | {_num(row['val_pearson'])} | {_num(row['val_auprc'])} |")
    lines += ["", "The children each iteration trained (the best by validation loss), in the seed's peak-signal runs "
              "(seed_figure8.sh: children on 1,000 windows, the parent on 9,000):", "",
              "| search | iteration | children | best child: train loss | best child: validation loss | parent's "
              "validation loss |", "| --- | --- | --- | --- | --- | --- |"]
    for name in ("seed_hilbert2d_peak_signal_hsc", "seed_hilbert2d_peak_signal_yeast"):
        rows = read_history(name)
        for iteration in sorted({row["iteration"] for row in rows if row["iteration"] > 0}):
            children = [r for r in rows if r["iteration"] == iteration and not r["is_parent"] and r["val_loss"]]
            parent = next((r for r in rows if r["iteration"] == iteration and r["is_parent"]), None)
            if children and parent:
                best = min(children, key=lambda r: r["val_loss"])
                lines.append(f"| {name} | {iteration} | {len(children)} | {_num(best['train_loss'])} | "
                             f"{_num(best['val_loss'])} | {_num(parent['val_loss'])} |")
    return "\n".join(lines) + "\n"


def speed_table() -> str:
    """Candidates (children) trained per hour, from the seconds each candidate took."""
    lines = ["| search | device | candidates | seconds per candidate | candidates per hour |", "| --- | --- | --- | --- | --- |"]
    for name in sorted(p.name for p in SEARCHES.iterdir() if p.is_dir()):
        # Candidates trained here: not the parent's re-entry, not a given starting model (only evaluated).
        rows = [r for r in read_history(name) if not r["is_parent"] and r["morphisms"] != ["initial model"]]
        summary_path = SEARCHES / name / "summary.json"
        device = json.loads(summary_path.read_text())["device"] if summary_path.exists() else "cpu"
        seconds = sum(r["seconds"] for r in rows)
        if rows and seconds:
            lines.append(f"| {name} | {device} | {len(rows)} | {seconds / len(rows):.1f} | {3600 * len(rows) / seconds:.0f} |")
    return "\n".join(lines) + "\n"


def _num(value) -> str:
    return "undefined" if value is None else f"{value:.4g}"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else "?"
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def learning_curve() -> str:
    """bench_learning_curve.py on the recipe's resampling source, prepared once into benchmarks/out/."""
    data, folder = REPO.parent / "shared" / "data" / "hsc", HERE / "out" / "hsc_resample"
    if not data.is_dir():
        return f"skipped: {data} is absent\n"
    if not (folder / "train.npz").exists():
        print(f"preparing {folder} ...", file=sys.stderr, flush=True)
        command = ["atacdenoise", "prepare", "--insertions", str(data / "noisy_5M.tn5_insertions.bed.gz"),
                   "--clean-bigwig", str(data / "clean_80M.coverage.bw"), "--clean-peaks", str(data / "clean_80M.peaks.bed"),
                   "--chrom-sizes", str(data / "chrom.sizes"), "--train-chroms", "chr1", "--val-chroms", "chr2",
                   "--depths", "0.1,0.2,1.0", "--n-train", "6000",
                   "--regions", str(data / "clean_80M.labelled_regions.bed"), "--resample", "--outdir", str(folder)]
        prepared = subprocess.run(command, capture_output=True, text=True)
        if not (folder / "train.npz").exists():
            return f"`atacdenoise prepare` failed: {(prepared.stderr.strip().splitlines() or ['(no output)'])[-1]}\n"
    return run_script("bench_learning_curve.py", "--train", str(folder / "train.npz"), "--val", str(folder / "val.npz"))


CHANNEL_MODELS = {  # bench_channels rows: same architecture and budget per data set (recipe_channel_models.sh),
    # then the shipped models (trained further: see their cards)
    "hsc": {"counts only": "benchmarks/models/hsc_counts.onnx", "+ annotation": "benchmarks/models/hsc_annotation.onnx",
            "shipped counts-only (fallback)": "registry/models/atac-denoiser-counts.onnx",
            "shipped default": "registry/models/atac-denoiser.onnx"},
    "yeast": {"counts only": "benchmarks/models/yeast_counts.onnx", "+ tss": "benchmarks/models/yeast_tss.onnx",
              "+ sequence (fixed)": "benchmarks/models/yeast_seq_fixed.onnx",
              "+ sequence (learned)": "benchmarks/models/yeast_seq_learned.onnx",
              "+ tss + sequence (both)": "benchmarks/models/yeast_all.onnx",
              "shipped sacCer3 model": "registry/models/atac-denoiser-sacCer3.onnx"},
}


def channels(dataset: str) -> str:
    """bench_channels.py on one data set; the yeast twins are made once into benchmarks/out/yeast."""
    args = ["--dataset", dataset]
    if dataset == "yeast":
        folder = HERE / "out" / "yeast"
        if not (folder / "deep.peaks.narrowPeak").exists():
            print(f"preparing {folder} ...", file=sys.stderr, flush=True)
            made = subprocess.run(["bash", str(HERE / "prepare_yeast.sh"), str(folder)], capture_output=True, text=True)
            if made.returncode != 0:
                return f"`prepare_yeast.sh` failed: {(made.stderr.strip().splitlines() or ['(no output)'])[-1]}\n"
        args += ["--work", str(folder)]
    models = [f"--model={name}={REPO / path}" for name, path in CHANNEL_MODELS[dataset].items() if (REPO / path).exists()]
    return run_script("bench_channels.py", *args, *models)


def sections(models: list[str]) -> list[tuple[str, str, Callable[[], str]]]:
    """``(key, heading, producer)`` of every section, in the order of RESULTS.md."""
    return [
        ("quality", "Denoising quality (chr2 of the HSC data, per base, 80M-read truth)",
         lambda: run_script("bench_quality.py", *models)),
        ("quantized", "int8 vs float32: what denoise's int8 trunk changes (chr2 of the HSC data, 80M-read truth)",
         lambda: run_script("bench_quantized.py")),
        ("channels_hsc", "Genome channels on HSC: counts only vs + annotation (chr2, 80M-read truth)",
         lambda: channels("hsc")),
        ("channels_yeast", "Genome channels on yeast: + TSS, + sequence (chrVII, deep-library truth)",
         lambda: channels("yeast")),
        ("ceiling", "Ceiling: an oracle that knows every peak's place and shape", lambda: run_script("bench_ceiling.py")),
        ("diagnose", "Why the seed's Hilbert-2D learned nothing: one change at a time",
         lambda: run_script("diagnose_hilbert2d.py")),
        ("layouts", "The seed's Figure 4 on HSC, in its peak-signal representation",
         lambda: run_script("bench_input_layouts.py", "--data", "hsc", "--save-best",
                            str(HERE / "out" / "figure4_hsc_best"))),
        ("layouts_yeast", "The seed's Figure 4 on yeast, in its peak-signal representation",
         lambda: run_script("bench_input_layouts.py", "--data", "yeast", "--save-best",
                            str(HERE / "out" / "figure4_yeast_best"))),
        ("figure8", "The seed's Figure 8: loss of each iteration's chosen model", figure8_table),
        ("speed", "Search speed: candidates trained per hour", speed_table),
        ("parallel", "Candidates side by side (--parallel-children)",
         lambda: run_script("bench_search_speed.py", "--windows", "1500")),
        ("curve", "Data or capacity: the same training on less of the training chromosome", learning_curve),
        ("binning", "Binning: ours vs deepTools bamCoverage", lambda: run_script("bench_binning.py")),
        ("denoise", "Denoising speed and memory (ONNX Runtime, this machine's CPU)", lambda: run_script("bench_denoise.py")),
        ("denoise_channels", "Denoising with genome channels: cost per 10 Mb",
         lambda: run_script("bench_denoise_channels.py")),
        ("qc", "QC on the real libraries", lambda: run_script("bench_qc.py")),
        ("metrics", "Metrics: ours vs scikit-learn / SciPy on genome-sized vectors",
         lambda: run_script("bench_metrics.py", "--sizes", "10e6", "30e6")),
        ("real_genome", "A real genome end to end: yeast reads from the real fragments through the pipeline",
         lambda: run_script("bench_real_genome.py")),
        ("genome_scale", "Genome scale: a 250 Mb chromosome, time and peak RSS of every step beside MACS3",
         lambda: run_script("bench_genome_scale.py")),
        ("install", "Install: a plain pip install into a fresh virtualenv, from PyPI",
         lambda: run_script("bench_install.py", "--with-peaks")),
    ]


def previous_sections(path: Path) -> dict[str, str]:
    """``{heading: body}`` of an existing RESULTS.md (``""``: the title text before the first section), so that
    --only keeps what it does not re-run."""
    found, heading = {}, ""
    for line in (path.read_text().splitlines(keepends=True) if path.exists() else []):
        if line.startswith("## "):
            heading = line[3:].strip()
            found[heading] = ""
        else:
            found[heading] = found.get(heading, "") + line
    return {heading: body.strip("\n") + "\n" for heading, body in found.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", default="", help="comma-separated sections to skip")
    parser.add_argument("--only", default="", help="comma-separated sections to re-run; the others are kept as they "
                                                   "are in RESULTS.md")
    parser.add_argument("--from-log", action="append", default=[], metavar="SECTION=FILE",
                        help="with --only: take SECTION's table from FILE, the saved output of its script run "
                             "earlier (a long run kept rather than repeated)")
    args = parser.parse_args(argv)
    skip, only = set(filter(None, args.skip.split(","))), set(filter(None, args.only.split(",")))
    logs = dict(spec.split("=", 1) for spec in args.from_log)
    if set(logs) - only:
        parser.error("--from-log names a section that --only does not")
    models = [f"--model={name}={path}" for name, path in MODELS.items() if path.exists()]
    keys = [key for key, _, _ in sections(models)]
    unknown = (skip | only) - set(keys)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; sections: {', '.join(keys)}")
    results = HERE / "RESULTS.md"
    previous = previous_sections(results) if only else {}
    parts = [previous.get("") or HEADER.format(date=datetime.date.today(), machine=machine())]
    for key, heading, produce in sections(models):
        if key in skip:
            body = "skipped\n"
        elif only and key not in only:
            body = previous.get(heading, f"not measured yet (run_all.py --only {key})\n")
        elif key in logs:
            body = (f"Measured {datetime.date.today()} on {machine()} by the script of this section, run on its "
                    f"own (its saved output, {Path(logs[key]).name}).\n\n" + Path(logs[key]).read_text())
        elif only:
            body = f"Re-measured {datetime.date.today()} on {machine()} (run_all.py --only {key}).\n\n" + produce()
        else:
            body = produce()
        parts.append(f"## {heading}\n\n{body}")
    text = "\n".join(parts)
    results.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
