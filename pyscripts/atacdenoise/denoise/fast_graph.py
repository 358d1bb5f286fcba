"""Rewrites that make an exported 1D model cheaper to run, applied at load time and proven before use.

Two rewrites, each the same function of the input (checked on random input on every load: a rewrite that
fails its check is not used, and the graph runs as exported):

- **Widen** (:func:`widen_graph`). A ``dilated1d`` model's centre bins see only ``rf`` bins either side
  (``models/dilated1d.py``), so its exported graph crops the window to the centre plus ``rf`` before the
  trunk (Slice ``[m, window - m)``, ``m = flank - rf``) and keeps the centre ``target_bins`` after it (Slice
  ``[rf, rf + target_bins)``). The same weights predict every bin at least ``rf`` bins from the window's
  edges: ``window_bins - 2 rf`` of them (3,634 of 4,096 for the bundled counts model, not 1,024). Widening
  rewrites those two Slices to ``[0, window)`` and ``[rf, window - rf)``: each predicted bin sees the very same
  input bins, so a chromosome gets the same values, bit for bit here, from ~3.5x fewer windows and ~30 % less
  model work (the trunk ran on 1,486 bins for 1,024 outputs; now 4,096 for 3,634). :func:`check_widened`
  tiles a random track both ways.
- **Conv1d as Conv2d** (:func:`conv1d_as_conv2d`). ONNX Runtime's blocked (NCHWc) convolutions, which use
  AVX-512/AVX2 far better than its 1D path, are applied to 2D convolutions only. A Conv1d of kernel ``k`` is
  a Conv2d of kernel ``(1, k)`` on a height-1 image, so the trunk's Convs, and the Relu and Add between them,
  are rewritten to 4D, squeezed back to 3D only where another op reads them: 32 % less CPU for the bundled
  model. The sums are ordered differently, so values move by float32 rounding (~1e-6 relative);
  :func:`check_same_outputs` bounds that on random windows.

A graph without the pattern (``hilbert2d``, ``atacworks``, a model that already reads its whole window) is
left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHECK_TOLERANCE = 1e-5  # relative to the signal's scale: float32 rounding (~1e-6) passes, a wrong graph not
ELEMENTWISE = ("Relu", "Add")  # ops between the trunk's Convs that work on any rank


@dataclass(frozen=True)
class Widened:
    graph: bytes  # the rewritten ONNX model
    target_bins: int  # bins predicted per window now
    receptive_field: int


def widen_graph(onnx_bytes: bytes, window_bins: int, target_bins: int) -> Widened | None:
    """The model with its centre widened to ``window_bins - 2 rf`` bins, or None when it has no such crop."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(onnx_bytes)
    graph = proto.graph
    constants = {out: numpy_helper.to_array(node.attribute[0].t)
                 for node in graph.node if node.op_type == "Constant" and len(node.attribute) == 1
                 for out in node.output}
    constants |= {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    flank = (window_bins - target_bins) // 2

    def bounds(node):  # (start, end) of a one-axis Slice with constant bounds, else None
        ends = [constants.get(name) for name in node.input[1:3]]
        if node.op_type != "Slice" or any(e is None or e.size != 1 for e in ends):
            return None
        return int(ends[0].item()), int(ends[1].item())

    slices = [(node, span) for node in graph.node if (span := bounds(node)) is not None]
    crops = [(node, (lo, hi)) for node, (lo, hi) in slices if 0 < lo and lo + hi == window_bins]
    centres = [(node, (lo, hi)) for node, (lo, hi) in slices if hi - lo == target_bins]
    if len(crops) != 1 or len(centres) != 1:
        return None
    margin, rf = crops[0][1][0], centres[0][1][0]
    if rf != flank - margin:
        return None
    wide = window_bins - 2 * rf
    _set_bounds(graph, crops[0][0], 0, window_bins)
    _set_bounds(graph, centres[0][0], rf, rf + wide)
    _drop_unused(graph)  # the Slices' old bounds
    for output in graph.output:  # (batch, target_bins) -> (batch, wide)
        output.type.tensor_type.shape.dim[-1].dim_value = wide
    del graph.value_info[:]  # intermediate shapes recorded at export no longer hold
    return Widened(proto.SerializeToString(), wide, rf)


def _drop_unused(graph) -> None:
    """Remove the Constant nodes and initializers no node reads any more (what a rewrite replaced)."""
    used = {name for node in graph.node for name in node.input}
    for node in [node for node in graph.node if node.op_type == "Constant" and not set(node.output) & used]:
        graph.node.remove(node)
    for init in [init for init in graph.initializer if init.name not in used]:
        graph.initializer.remove(init)


def _set_bounds(graph, node, start: int, end: int) -> None:
    from onnx import numpy_helper

    for position, value, suffix in ((1, start, "starts"), (2, end, "ends")):
        name = f"{node.name or node.output[0]}_widened_{suffix}"
        graph.initializer.append(numpy_helper.from_array(np.array([value], np.int64), name))
        node.input[position] = name


def check_widened(original, widened, window_bins: int, target_bins: int, wide_bins: int, input_channels: int = 1,
                  seed: int = 0) -> bool:
    """True when ``widened`` (``(n, window) -> (n, wide_bins)``) predicts a random track as ``original`` does.

    ``original`` and ``widened`` are callables of a window batch returning ``(signal, logits)``. The track is
    sparse and peaky like coverage; the original's consecutive windows tile the bins the widened window predicts.
    """
    rng = np.random.default_rng(seed)
    flank, wide_flank = (window_bins - target_bins) // 2, (window_bins - wide_bins) // 2
    n_original = -(-wide_bins // target_bins)
    length = window_bins + n_original * target_bins + 2 * flank
    track = rng.gamma(0.3, 2.0, (input_channels, length)).astype(np.float32)
    track[0] *= rng.random(length) < 0.3
    if input_channels > 1:
        track[1:] = rng.random((input_channels - 1, length)) < 0.5  # flags and codes both take 0/1 here
    start = flank  # the widened window [start, start + window); its outputs cover [start + wide_flank, ...)
    first = start + wide_flank
    windows = np.stack([track[:, s:s + window_bins] for s in range(first - flank, first - flank
                                                                   + n_original * target_bins, target_bins)])
    wide_window = track[None, :, start:start + window_bins]
    if input_channels == 1:
        windows, wide_window = windows[:, 0], wide_window[:, 0]
    return _agree([out.reshape(-1)[:wide_bins] for out in original(windows)],
                  [out.reshape(-1) for out in widened(wide_window)])


def conv1d_as_conv2d(onnx_bytes: bytes) -> bytes | None:
    """The model with every Conv1d as a Conv2d of kernel ``(1, k)`` on ``(N, C, 1, W)`` tensors (None unless every
    Conv is a Conv1d).

    Tensors stay 4D from Conv to Conv through elementwise ops; any other reader (a Slice, a Squeeze, a graph
    output) gets the 3D tensor back through one Squeeze. The graph is walked in its (topological) order.
    """
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load_from_string(onnx_bytes)
    graph = proto.graph
    weights = {init.name: init for init in graph.initializer}
    is_conv1d = lambda node: (node.op_type == "Conv" and node.input[1] in weights  # noqa: E731
                              and len(weights[node.input[1]].dims) == 3)
    convs = [node for node in graph.node if node.op_type == "Conv"]
    if not convs or not all(is_conv1d(node) for node in convs):  # a 2D model (hilbert2d) gains nothing
        return None
    graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64), "conv2d/height_axis"))
    four_d: dict[str, str] = {}  # tensor -> its 4D twin
    only_4d: set[str] = set()  # tensors that exist only as their 4D twin so far
    nodes = []

    def to_4d(name: str) -> str:
        if name not in four_d:
            four_d[name] = f"{name}/4d"
            nodes.append(helper.make_node("Unsqueeze", [name, "conv2d/height_axis"], [four_d[name]]))
        return four_d[name]

    def to_3d(name: str) -> str:
        if name in only_4d:
            only_4d.discard(name)
            nodes.append(helper.make_node("Squeeze", [four_d[name], "conv2d/height_axis"], [name]))
        return name

    for node in graph.node:
        activations = [name for name in node.input if name and name not in weights]
        if is_conv1d(node) or (node.op_type in ELEMENTWISE and activations
                               and all(name in four_d for name in activations)):
            if is_conv1d(node):
                _conv_to_2d(node, weights[node.input[1]], graph)
            node.input[:] = [to_4d(name) if name in activations else name for name in node.input]
            for name in node.output:
                four_d[name] = f"{name}/4d"
                only_4d.add(name)
            node.output[:] = [four_d[name] for name in node.output]
        else:
            node.input[:] = [to_3d(name) for name in node.input]
        nodes.append(node)
    for output in graph.output:
        to_3d(output.name)
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused(graph)  # the Conv1d kernels
    del graph.value_info[:]
    return proto.SerializeToString()


def _conv_to_2d(node, weight, graph) -> None:
    """Conv1d attributes and weight ``(O, I, k)`` -> Conv2d ``(O, I, 1, k)`` (a new initializer)."""
    from onnx import helper, numpy_helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    kernel = numpy_helper.to_array(weight)
    twin = f"{weight.name}/2d"
    graph.initializer.append(numpy_helper.from_array(kernel[:, :, None, :], twin))
    node.input[1] = twin
    begin, end = attributes.get("pads", [0, 0])
    two_d = {"kernel_shape": [1, kernel.shape[2]], "dilations": [1, attributes.get("dilations", [1])[0]],
             "strides": [1, attributes.get("strides", [1])[0]], "pads": [0, begin, 0, end]}
    del node.attribute[:]
    node.attribute.extend(helper.make_attribute(name, value) for name, value in
                          {**{k: v for k, v in attributes.items() if k not in two_d}, **two_d}.items())


def check_same_outputs(original, rewritten, window_bins: int, input_channels: int = 1, seed: int = 0) -> bool:
    """True when ``rewritten`` gives ``original``'s outputs (callables of a window batch) on random windows."""
    rng = np.random.default_rng(seed)
    shape = (8, window_bins) if input_channels == 1 else (8, input_channels, window_bins)
    windows = rng.gamma(0.3, 2.0, shape).astype(np.float32) * (rng.random(shape) < 0.3)
    return _agree(original(windows), rewritten(windows))


def _agree(expected, got) -> bool:
    """Each output of ``got`` has ``expected``'s shape and values to ``CHECK_TOLERANCE`` of the signal's scale."""
    scale = max(float(np.abs(expected[0]).max()), 1.0)
    return all(e.shape == g.shape and np.abs(e - g).max() <= CHECK_TOLERANCE * scale for e, g in zip(expected, got))
