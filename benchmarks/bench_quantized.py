#!/usr/bin/env python
"""int8 vs float32: what static int8 quantisation would cost in quality, on chr2 of the HSC data (80M truth).

Issue 20 asks for int8 only "with a quality check (chr2 Pearson/AUPRC within 0.002 of float32, else
refuse)". This measures it. For each depth, the genome-sized library of ``bench_quality.py`` (chr2 and 299
renamed copies) is made; the model's Convs are quantised with ONNX Runtime's static QDQ quantisation
(per-channel int8 weights, uint8 activations, min-max ranges calibrated on ``--calibration-windows``
windows spread evenly over that very library, the most favourable calibration there is), in two variants:
every Conv, and the trunk only (stem and heads kept float32). Each model denoises chr2; the table gives
per-base metrics inside the labelled regions and the difference from float32, the CPU milliseconds per
window of each graph, and the gate. Exit 1 when no variant passes the gate, 2 when the data are absent.

    python benchmarks/bench_quantized.py [--depths 0.1,1.0] [--model PATH] [--tolerance 0.002]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quality import DATA, Truth, genome_library, hsc_annotation, model_tracks, noisy_insertions  # noqa: E402

from atacdenoise.denoise import BUNDLED_COUNTS_MODEL  # noqa: E402
from atacdenoise.evaluate.per_base import Scored  # noqa: E402

GATED = ("pearson", "auprc")
SHOWN = ("pearson", "auprc", "auroc", "peak_f1")


def library_windows(bed: Path, model: str, sizes: dict[str, int], n: int) -> np.ndarray:
    """``n`` model-input windows at evenly spaced places of the whole library, binned as denoise bins them."""
    from atacdenoise.denoise.onnx_runner import OnnxDenoiser
    from atacdenoise.denoise.run import input_tracks

    contract = OnnxDenoiser(model).contract
    _, tracks = input_tracks(bed, "auto", sizes, contract)
    offsets = np.cumsum([0] + [sizes[chrom] for chrom in tracks.order])
    places = ((np.arange(n) + 0.5) * offsets[-1] / n).astype(np.int64)
    windows = []
    for i, (chrom, n_bins, read_bins) in enumerate(tracks):
        here = places[(places >= offsets[i]) & (places < offsets[i + 1])] - offsets[i]
        for start in np.clip(here // contract.bin_size - contract.window_bins // 2, 0, n_bins - contract.window_bins):
            windows.append(read_bins(int(start), int(start) + contract.window_bins))
    return np.stack(windows).astype(np.float32)


def quantize(model: str, windows: np.ndarray, output: Path, trunk_only: bool) -> Path:
    """Static QDQ int8 of ``model`` calibrated (min-max) on ``windows``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Windows(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": windows[i:i + 16]} for i in range(0, len(windows), 16)])

        def get_next(self):
            return next(self.batches, None)

    convs = [node.name for node in onnx.load(model).graph.node if node.op_type == "Conv"]
    excluded = [name for name in convs if trunk_only and ("stem" in name or "head" in name)]
    quantize_static(model, str(output), Windows(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                    nodes_to_exclude=excluded)
    return output


def cpu_ms_per_window(model, windows: np.ndarray) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    session.run(None, {"x": windows[:64]})
    started = time.process_time()
    for first in range(0, len(windows), 64):
        session.run(None, {"x": windows[first:first + 64]})
    return (time.process_time() - started) * 1000 / len(windows)


def evaluate_depth(truth: Truth, p: float, model: str, n_windows: int) -> list[tuple[str, dict, float]]:
    """``(variant, metrics, CPU ms per window)`` for float32 and both int8 variants at depth ``p``."""
    insertions = noisy_insertions(truth.data, truth.sizes, p, seed=0)
    true_cov, true_peaks, region = truth.chrom("chr2")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bed, sizes = genome_library(insertions["chr2"], "chr2", truth.sizes["chr2"], 299, Path(tmp))
        windows = library_windows(bed, model, sizes, n_windows)
        variants = {"float32": Path(model),
                    "int8, every Conv": quantize(model, windows, Path(tmp) / "int8_all.onnx", False),
                    "int8, trunk only": quantize(model, windows, Path(tmp) / "int8_trunk.onnx", True)}
        for name, path in variants.items():
            scored = Scored()
            denoised, prob, called = model_tracks(str(path), bed, "chr2", sizes, Path(tmp), hsc_annotation(truth.data))
            scored.add(region, denoised, true_cov, true_peaks, score=prob, called=called)
            rows.append((name, scored.metrics(), cpu_ms_per_window(path, windows)))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="0.1,1.0", help="keep-probabilities of the 5M library (0.1,1.0)")
    parser.add_argument("--model", default=str(BUNDLED_COUNTS_MODEL), help="float32 ONNX model (the bundled counts one)")
    parser.add_argument("--calibration-windows", type=int, default=512, help="windows to calibrate on (512)")
    parser.add_argument("--tolerance", type=float, default=0.002, help="largest allowed |int8 - float32| (0.002)")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not (args.data / "chrom.sizes").exists():
        print(f"bench_quantized: real data not found at {args.data}; nothing to measure", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    truth = Truth(args.data)
    print("| depth | model | " + " | ".join(SHOWN) + " | CPU ms/window |")
    print("|" + " --- |" * (len(SHOWN) + 3))
    worst: dict[str, float] = {}
    for p in (float(x) for x in args.depths.split(",")):
        rows = evaluate_depth(truth, p, args.model, args.calibration_windows)
        exact = rows[0][1]
        for name, metrics, ms in rows:
            cells = [f"{metrics[m]:.3f}" + ("" if name == "float32" else f" ({metrics[m] - exact[m]:+.4f})")
                     for m in SHOWN]
            print(f"| {p * 5:g}M | {name} | " + " | ".join(cells) + f" | {ms:.2f} |")
            if name != "float32":
                worst[name] = max([worst.get(name, 0.0), *(abs(metrics[m] - exact[m]) for m in GATED)])
    passed = [name for name, value in worst.items() if value <= args.tolerance]
    print(f"gate: |int8 - float32| <= {args.tolerance} on {' and '.join(GATED)} at every depth: "
          + "; ".join(f"{name} {'met' if value <= args.tolerance else 'NOT met'} (worst {value:.4f})"
                      for name, value in worst.items()))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
