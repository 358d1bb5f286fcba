#!/usr/bin/env python
"""int8 vs float32: what denoise's int8 trunk costs in quality, on chr2 of the HSC data against the 80M truth.

Issue 20 allows int8 only "with a quality check (chr2 Pearson/AUPRC within 0.002 of float32, else
refuse)". This is that check, on denoise's own path: for each depth, the genome-sized library of
``bench_quality.py`` (chr2 and 299 renamed copies, 3 Gb) is denoised (chr2) with ``precision="float32"`` and
``precision="int8"`` (the trunk's Convs calibrated on the 256 even spread windows of that library and its 16
densest spots, checked on the 256 odd ones: ``denoise/quantize.py``), and per-base metrics are taken inside the labelled regions. The table gives both
rows, their difference and the int8 model's agreement with float32 on the check windows. Exit 1 when the gate fails (then int8 must not be used), 2 when the
data are absent.

    python benchmarks/bench_quantized.py [--depths 0.1,0.2,1.0] [--model NAME=PATH ...] [--tolerance 0.002]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_quality import DATA, Truth, genome_library, hsc_annotation, noisy_insertions  # noqa: E402

from atacdenoise.denoise import BUNDLED_COUNTS_MODEL, BUNDLED_MODEL, denoise  # noqa: E402
from atacdenoise.evaluate.per_base import Scored  # noqa: E402
from atacdenoise.io.bigwig import read_bigwig  # noqa: E402
from atacdenoise.io.narrowpeak import interval_mask, read_peaks  # noqa: E402

GATED = ("pearson", "auprc")
SHOWN = ("pearson", "auprc", "auroc", "peak_f1")
PRECISIONS = ("float32", "int8")


def denoise_chr2(model: str, bed: Path, sizes: dict, workdir: Path, precision: str, truth: Truth):
    """(metrics, provenance, CPU seconds) of ``model`` denoising chr2 of the library at ``precision``."""
    started = time.process_time()
    out = denoise(bed, model, sizes, workdir / f"{Path(model).stem}.{precision}", progress=False, chroms=["chr2"],
                  precision=precision, **hsc_annotation(truth.data))
    seconds = time.process_time() - started
    true_cov, true_peaks, region = truth.chrom("chr2")
    called = interval_mask(read_peaks(out["peaks"]).get("chr2"), sizes["chr2"])
    scored = Scored()
    scored.add(region, read_bigwig(out["denoised"], "chr2"), true_cov, true_peaks,
               score=read_bigwig(out["peakprob"], "chr2"), called=called)
    return scored.metrics(), json.loads(Path(out["provenance"]).read_text()), seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default="0.1,0.2,1.0", help="keep-probabilities of the 5M library")
    parser.add_argument("--model", action="append", default=[],
                        help="NAME=PATH.onnx, repeatable (default: the bundled HSC models, counts and annotation)")
    parser.add_argument("--tolerance", type=float, default=0.002, help="largest allowed |int8 - float32| (0.002)")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not (args.data / "chrom.sizes").exists():
        print(f"bench_quantized: real data not found at {args.data}; nothing to measure", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    models = (dict(item.split("=", 1) for item in args.model) if args.model
              else {"counts": str(BUNDLED_COUNTS_MODEL), "annotation": str(BUNDLED_MODEL)})
    truth = Truth(args.data)
    print("| depth | model | precision | " + " | ".join(SHOWN) + " | int8 vs float32 (check windows) |")
    print("|" + " --- |" * (len(SHOWN) + 4))
    worst = 0.0
    for p in (float(x) for x in args.depths.split(",")):
        insertions = noisy_insertions(truth.data, truth.sizes, p, seed=0)
        with tempfile.TemporaryDirectory() as tmp:
            bed, sizes = genome_library(insertions["chr2"], "chr2", truth.sizes["chr2"], 299, Path(tmp))
            for name, model in models.items():
                rows = {precision: denoise_chr2(model, bed, sizes, Path(tmp), precision, truth)
                        for precision in PRECISIONS}
                (exact, _, _), (int8, record, _) = rows["float32"], rows["int8"]
                precision = record["graph"]["precision"]
                worst = max([worst, *(abs(int8[m] - exact[m]) for m in GATED)])
                for label, (metrics, _, _) in rows.items():
                    cells = [f"{metrics[m]:.4f}" + ("" if label == "float32" else f" ({metrics[m] - exact[m]:+.4f})")
                             for m in SHOWN]
                    note = ("" if label == "float32" else f"{precision['mode']}: Pearson "
                            f"{precision.get('agreement_pearson', float('nan')):.5f}")
                    print(f"| {p * 5:g}M | {name} | {label} | " + " | ".join(cells) + f" | {note} |")
    verdict = "met" if worst <= args.tolerance else "NOT met"
    print(f"gate: |int8 - float32| <= {args.tolerance} on {' and '.join(GATED)} at every depth and model: {verdict} "
          f"(worst {worst:.4f})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
