"""Carry a model exported before density normalisation (issue 19) over to it, without retraining.

Models exported before scaled their input per million insertions of the file
(contract ``input_normalisation = "cpm"``). The units that replace it
(``atacdenoise.tracks.depth``) differ from those, *on a model's own training
data*, by one factor ``k`` that is the same for inputs and targets: the
training source thins one clean library, and both its inputs and targets are
rescaled from that library's size. So ``g(x) = k * f(x / k)`` computes in the
new units exactly what the trained network ``f`` computed in the old ones. This
script writes ``g``: a Mul by ``1/k`` on the counts channel (genome channels
keep their units), a Mul by ``k`` on the signal output (peak logits unchanged),
and the new contract fields; then checks ``g(k x) = k f(x)`` with onnxruntime.

``k`` comes from the clean library the model was trained on:
``(REFERENCE_DENSITY / density) / (1e6 / all insertions)``. For the HSC data
(files covering 20 Mb, nothing left out) it is exactly 1, and only the
contract changes.

Usage: python benchmarks/rescale_onnx.py --onnx OLD.onnx --clean-insertions F --chrom-sizes S --output NEW.onnx
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import onnx
from onnx import helper, numpy_helper

from atacdenoise.io.chromsizes import read_chrom_sizes
from atacdenoise.io.bigwig import coverage_block_counts
from atacdenoise.io.reads import detect_format, iter_insertions
from atacdenoise.tracks.depth import BLOCK_BP, REFERENCE_DENSITY, block_counts, measure_depth

log = logging.getLogger("rescale_onnx")


def unit_factor(clean_insertions, chrom_sizes: dict[str, int]) -> float:
    """New units / old units on the clean training library (``k`` above)."""
    if detect_format(clean_insertions) == "bigwig":  # a coverage track of extended insertions (HSC's clean_80M)
        blocks = dict(coverage_block_counts(clean_insertions, chrom_sizes, block=BLOCK_BP))
    else:
        blocks = {chrom: block_counts(positions, chrom_sizes[chrom])
                  for chrom, positions in iter_insertions(clean_insertions, chrom_sizes)}
    everything = sum(b.sum() for b in blocks.values())
    depth = measure_depth(blocks.items(), chrom_sizes, clean_insertions)
    log.info("%s; %s insertions in all", depth.describe(), f"{everything:,.0f}")
    return depth.scale / (1e6 / everything)


def rescale(proto: onnx.ModelProto, factor: float) -> onnx.ModelProto:
    """``x -> factor * f(x / factor)`` on the counts channel and the signal output; contract made "density"."""
    graph = proto.graph
    if abs(factor - 1.0) > 1e-9:  # HSC: the units did not change at all
        x = graph.input[0]
        channels = [d.dim_value for d in x.type.tensor_type.shape.dim][1:]
        shape = (1, channels[0], 1) if len(channels) == 2 else (1, 1)
        per_channel = np.ones(shape, np.float32)
        per_channel.reshape(-1)[0] = 1.0 / factor
        graph.initializer.extend([numpy_helper.from_array(per_channel, "unit_in"),
                                  numpy_helper.from_array(np.array(factor, np.float32), "unit_out")])
        for node in graph.node:
            node.input[:] = ["x_in_old_units" if name == x.name else name for name in node.input]
            node.output[:] = ["signal_in_old_units" if name == "signal" else name for name in node.output]
        graph.node.insert(0, helper.make_node("Mul", [x.name, "unit_in"], ["x_in_old_units"]))
        graph.node.append(helper.make_node("Mul", ["signal_in_old_units", "unit_out"], ["signal"]))
    props = {p.key: p.value for p in proto.metadata_props}
    props.update({"atacdenoise.input_normalisation": "density",
                  "atacdenoise.reference_density": str(REFERENCE_DENSITY),
                  "atacdenoise.signal_units": "mean coverage of +-extend bp extended insertions per bin, rescaled to "
                                              "a library of reference_density insertions per base"})
    helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    return proto


def check(old_model: bytes, new_model: bytes, factor: float) -> float:
    """Largest relative difference between ``new(k x)`` and ``k old(x)`` (and logits) on random windows."""
    import onnxruntime as ort

    old, new = (ort.InferenceSession(m, providers=["CPUExecutionProvider"]) for m in (old_model, new_model))
    dims = [d if isinstance(d, int) else 4 for d in old.get_inputs()[0].shape]
    rng = np.random.default_rng(0)
    x = rng.gamma(0.3, 20.0, size=dims).astype(np.float32)
    x_new = x.copy()
    (x_new[:, 0] if x.ndim == 3 else x_new)[...] *= factor
    (signal_old, logits_old), (signal_new, logits_new) = old.run(None, {"x": x}), new.run(None, {"x": x_new})
    worst = max(np.abs(signal_new - factor * signal_old).max() / (np.abs(factor * signal_old).max() + 1e-12),
                np.abs(logits_new - logits_old).max() / (np.abs(logits_old).max() + 1e-12))
    return float(worst)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, help="model exported with input_normalisation cpm")
    p.add_argument("--clean-insertions", required=True, help="the clean library it was trained on (insertions, or a coverage bigWig)")
    p.add_argument("--chrom-sizes", required=True, help="the chromosomes its training data were made on")
    p.add_argument("--output", required=True)
    args = p.parse_args()
    logging.basicConfig(format="%(name)s: %(message)s", level=logging.INFO)
    proto = onnx.load(args.onnx)
    if {p.key: p.value for p in proto.metadata_props}.get("atacdenoise.input_normalisation") != "cpm":
        print(f"{args.onnx}: already in density units; nothing to carry over")  # e.g. trained with today's code
        return
    factor = unit_factor(args.clean_insertions, read_chrom_sizes(args.chrom_sizes))
    old = proto.SerializeToString()
    new = rescale(proto, factor).SerializeToString()
    worst = check(old, new, factor)
    print(f"{args.output}: unit factor k = {factor:.6f}; max relative difference new(k x) vs k old(x): {worst:.2e}")
    if worst > 1e-5:
        raise SystemExit("parity check failed; nothing written")
    with open(args.output, "wb") as out:  # only now: --output may be --onnx itself
        out.write(new)


if __name__ == "__main__":
    main()
