#!/usr/bin/env python
"""Recover a search folder (best_model.json + best_model.pt) from an exported ONNX model and its architecture.

The bundled model ships as ONNX only; its weights are the graph's initializers,
named as the PyTorch state dict (the exporter keeps parameter names). This loads
them into the architecture strictly (every parameter, no extra) and checks the
rebuilt model against onnxruntime on real-looking windows, so a warm start from
the shipped model starts exactly there.

Usage: python benchmarks/onnx_to_search.py --onnx MODEL.onnx --config ARCH.json --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def main(argv=None) -> int:
    import onnx
    from onnx import numpy_helper

    from atacdenoise.models import build_model
    from atacdenoise.registry.onnx_export import check_parity, synthetic_windows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True, type=Path)
    parser.add_argument("--config", required=True, type=Path, help="the model's architecture JSON")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    model = build_model(json.loads(args.config.read_text()))
    weights = {init.name: torch.from_numpy(numpy_helper.to_array(init).copy())
               for init in onnx.load(str(args.onnx)).graph.initializer if init.name in model.state_dict()}
    model.load_state_dict(weights, strict=True)
    report = check_parity(args.onnx, model.eval(), synthetic_windows(model.window_bins, channels=model.input_channels))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "best_model.json").write_text(json.dumps(model.to_config(), indent=1))
    torch.save(model.state_dict(), args.out / "best_model.pt")
    print(f"{args.out}: {len(weights)} tensors from {args.onnx}; max |ONNX - PyTorch| signal "
          f"{report.max_abs_diff_signal:.2g}, logits {report.max_abs_diff_logits:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
