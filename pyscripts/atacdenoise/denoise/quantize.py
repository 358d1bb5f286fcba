"""int8 trunk, calibrated on the library being denoised and checked on it before it is used.

ONNX Runtime's static QDQ quantisation (``onnxruntime.quantization.quantize_static``): the trunk's Convs
(every Conv but the stem, the heads and a sequence tower: little work, and their rounding would reach the
output unsoftened) get per-channel int8 weights and uint8 activations whose ranges are calibrated (min-max)
on windows of the input itself; everything else stays float32, and so does the contract (the metadata is
kept). On a CPU with VNNI (AVX512-VNNI, AVX-VNNI) ONNX Runtime runs those Convs as int8 GEMMs: for the bundled
counts model, widened, 0.88 vs 2.1 CPU ms per 1,000 bins of float32 (Conv2d). Dynamic quantisation
(ConvInteger) was 1.4x *slower* than float32 here.

Not exact. Measured against the truth (``benchmarks/bench_quantized.py``, chr2 of the HSC data, both HSC
models, 0.5M/1M/5M reads): within 0.0009 of float32 on Pearson and AUPRC. Every Conv in int8 lost up to
0.0034 AUPRC, and ranges calibrated on another chromosome agreed with float32 at only Pearson 0.985. So the
calibration windows come from the library being denoised, evenly spaced over the whole of it
(:func:`sample_places`, whatever ``--chroms``: the groups of a scattered run get the very same int8 model
as a whole run); the even ones and those at its densest spots (:func:`densest_starts`) calibrate, the odd
ones check: the int8 model is used only when its signal correlates with float32's at >= ``MIN_AGREEMENT``
there; else float32 runs, with a note.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from atacdenoise.tracks.bin_grid import n_bins

MIN_AGREEMENT = 0.999  # Pearson of the int8 and float32 signals on the check windows
# precision "auto" takes int8 from this much sequence under the input's chromosomes: calibrating costs ~4 s,
# repaid after ~100 Mb (about 1.1 CPU s saved per 25 Mb at 5M reads); smaller inputs stay exact.
INT8_FROM_BP = 100_000_000
# Half calibrate, half check. ONNX Runtime keeps every calibration window's intermediate tensors until the
# ranges are taken (its option to fold them early drops data): ~180 MB for the bundled model's 256.
CALIBRATION_WINDOWS = 512
# The windows at the input's densest spots join the calibration: a range that stops short of them clips the
# highest signal (HSC 1M: agreement 0.9983 without them, 0.9998 with them).
PEAK_WINDOWS = 16
CALIBRATION_BATCH = 16
FLOAT_CONVS = ("stem", "head", "tower")  # parameter names (models/) of the Convs kept float32


def sample_places(chrom_sizes: dict[str, int], window_bins: int, bin_size: int,
                  n: int = CALIBRATION_WINDOWS) -> dict[str, list[int]]:
    """First bins of ``n`` windows centred at evenly spaced places of the chromosomes laid end to end, by
    chromosome; a window lies wholly inside its chromosome (one shorter than a window gets none)."""
    names = list(chrom_sizes)
    offsets = np.concatenate([[0], np.cumsum([chrom_sizes[c] for c in names])])
    places = ((np.arange(n) + 0.5) * offsets[-1] / n).astype(np.int64)
    starts: dict[str, list[int]] = {}
    for i, chrom in enumerate(names):
        last = n_bins(chrom_sizes[chrom], bin_size) - window_bins
        here = places[(places >= offsets[i]) & (places < offsets[i + 1])] - offsets[i]
        if last >= 0 and len(here):
            starts[chrom] = np.unique(np.clip(here // bin_size - window_bins // 2, 0, last)).tolist()
    return starts


def densest_starts(positions: np.ndarray, length: int, bin_size: int, window_bins: int,
                   k: int = PEAK_WINDOWS) -> list[tuple[int, int]]:
    """``(insertions, first bin)`` of windows centred on the ``k`` bins of a chromosome with most insertions."""
    last = n_bins(length, bin_size) - window_bins
    if last < 0 or not len(positions):
        return []
    counts = np.bincount(np.asarray(positions, np.int64) // bin_size)
    top = np.argsort(counts, kind="stable")[-k:]
    return [(int(counts[b]), int(np.clip(b - window_bins // 2, 0, last))) for b in top]


def quantize_graph(graph: bytes, calibration: np.ndarray, check: np.ndarray, predictor,
                   min_agreement: float = MIN_AGREEMENT):
    """``(int8 graph or None, record)``: ``graph`` with an int8 trunk calibrated on ``calibration`` windows, or
    None when its signal correlates with ``graph``'s below ``min_agreement`` on the ``check`` windows.
    ``predictor(graph)`` gives a function of windows -> ``(signal, probability)``. The record (for the
    provenance) says which, and how well."""
    from atacdenoise.metrics import pearson

    calibration, check = (np.ascontiguousarray(w, np.float32) for w in (calibration, check))
    int8 = calibrated_int8(graph, calibration)
    (s1, p1), (s2, p2) = predictor(graph)(check), predictor(int8)(check)
    agreement = float(pearson(s1.ravel(), s2.ravel()) or 0.0)
    record = {"mode": "int8" if agreement >= min_agreement else "float32", "calibration_windows": len(calibration),
              "check_windows": len(check), "agreement_pearson": round(agreement, 6), "min_agreement": min_agreement,
              "max_peak_probability_diff": round(float(np.abs(p1 - p2).max()), 6)}
    return (int8 if record["mode"] == "int8" else None), record


def calibrated_int8(graph: bytes, calibration: np.ndarray) -> bytes:
    """The QDQ int8-trunk model of ``graph`` (float32 ONNX bytes), activation ranges from ``calibration``."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Windows(CalibrationDataReader):
        def __init__(self):
            self.batches = (calibration[i:i + CALIBRATION_BATCH] for i in range(0, len(calibration),
                                                                                CALIBRATION_BATCH))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"x": batch}

    kept_float = [node.name for node in onnx.load_from_string(graph).graph.node if node.op_type == "Conv"
                  and any(part in node.input[1] for part in FLOAT_CONVS)]
    root, level = logging.getLogger(), logging.getLogger().level  # quantize_static logs advice on the root logger
    with tempfile.TemporaryDirectory(prefix="atacdenoise-int8-") as tmp:
        source, target = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(graph)
        try:
            root.setLevel(max(level, logging.ERROR))
            quantize_static(os.fspath(source), os.fspath(target), Windows(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv"], nodes_to_exclude=kept_float)
        finally:
            root.setLevel(level)
        return target.read_bytes()
