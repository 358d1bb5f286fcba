"""Export a model to ONNX with its contract, and prove the file computes what PyTorch computes.

The ONNX graph takes plain 1D windows, ``(N, window_bins)`` or ``(N, channels,
window_bins)`` with genome channels (the Hilbert layout is inside the model),
has a dynamic batch axis, opset >= 17, and carries :class:`ModelContract` as
``metadata_props``. Runs with onnxruntime alone, no torch.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atacdenoise.denoise.contract import ModelContract
from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path

OPSET = 17
INPUT_NAME = "x"
OUTPUT_NAMES = ("signal", "peak_logits")
PARITY_RELATIVE_TOLERANCE = 1e-4


class ParityError(InputError):
    """The ONNX file does not reproduce the PyTorch model: never register it."""


@dataclass
class ParityReport:
    max_abs_diff_signal: float
    max_abs_diff_logits: float
    signal_scale: float
    tolerance: float
    n_windows: int

    @property
    def passed(self) -> bool:
        return max(self.max_abs_diff_signal, self.max_abs_diff_logits) <= self.tolerance


def export_onnx(
    source,
    path: str | os.PathLike,
    window_bins: int | None = None,
    contract: ModelContract | None = None,
    check_windows: np.ndarray | None = None,
    opset: int = OPSET,
) -> ParityReport:
    """Write ``path`` (.onnx) from a search folder or a model; return the parity report.

    ``check_windows`` are real input windows ``(n, window_bins)`` for the parity
    check (default: a synthetic sparse track, which is weaker). Raises
    :class:`ParityError` and writes nothing when ONNX and PyTorch disagree by
    more than ``1e-4 * signal scale``.
    """
    from atacdenoise.search.history import load_search_model

    model = load_search_model(source) if isinstance(source, (str, os.PathLike)) else source.eval()
    window_bins = window_bins or model.window_bins
    if window_bins != model.window_bins:
        raise InputError(path, f"window_bins {window_bins} does not match the model's {model.window_bins}")
    contract = contract or ModelContract(space=model.to_config()["space"], window_bins=model.window_bins,
                                         target_bins=model.target_bins)
    if (contract.window_bins, contract.target_bins) != (model.window_bins, model.target_bins):
        raise InputError(path, f"contract window {contract.window_bins}/{contract.target_bins} differs from the "
                               f"model's {model.window_bins}/{model.target_bins}")
    channels = getattr(model, "input_channels", 1)
    if contract.input_channels != channels:
        raise InputError(path, f"the contract lists {contract.input_channels - 1} genome channels but the model "
                               f"reads {channels - 1}")
    windows = (synthetic_windows(window_bins, channels=channels) if check_windows is None
               else np.asarray(check_windows, np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        _torch_export(model, raw, window_bins, opset, channels)
        _attach_contract(raw, contract)
        report = check_parity(raw, model, windows)
        with atomic_path(path) as out:
            os.replace(raw, out)
    return report


def _torch_export(model, path: Path, window_bins: int, opset: int, channels: int = 1) -> None:
    import torch

    shape = (2, window_bins) if channels == 1 else (2, channels, window_bins)
    example = torch.zeros(*shape, device=_device_of(model))  # CPU or CUDA: export where the model lives
    # The TorchScript exporter (dynamo=False) handles index_select and the
    # Hilbert buffer reliably; the graph has no torch dependency at run time.
    torch.onnx.export(model, (example,), str(path), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                      dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)},
                      opset_version=opset, dynamo=False)


@contextmanager
def _exact_float32():
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _device_of(model):
    return next(iter(model.parameters())).device


def _attach_contract(path: Path, contract: ModelContract) -> None:
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, contract.to_metadata())
    proto.producer_name = "atacdenoise"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def synthetic_windows(window_bins: int, n: int = 16, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Sparse, peaky windows resembling shallow coverage (used only when no real windows are given);
    genome channels uniform in [0, 1]."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(0.3, 2.0, size=(n, window_bins)).astype(np.float32)
    signal = base * (rng.random((n, window_bins)) < 0.3)
    if channels == 1:
        return signal
    return np.concatenate([signal[:, None], rng.random((n, channels - 1, window_bins), dtype=np.float32)], axis=1)


def check_parity(onnx_path: str | os.PathLike, model, windows: np.ndarray, batch_size: int = 32) -> ParityReport:
    """Compare onnxruntime with PyTorch eager on ``windows``; raise ParityError when they differ."""
    import onnxruntime as ort
    import torch

    windows = np.ascontiguousarray(windows, dtype=np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    diffs, scale = np.zeros(2), 0.0
    # The reference is exact float32: TF32 (CUDA's default for convolutions) would be judged, not the export.
    with torch.no_grad(), _exact_float32():
        for first in range(0, len(windows), batch_size):
            batch = windows[first:first + batch_size]
            expected = [t.float().cpu().numpy() for t in model(torch.from_numpy(batch).to(_device_of(model)))]
            got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
            diffs = np.maximum(diffs, [np.abs(e - g).max() for e, g in zip(expected, got)])
            scale = max(scale, float(np.abs(expected[0]).max()))
    # Absolute differences grow with the signal's magnitude: compare against it (at least 1).
    tolerance = PARITY_RELATIVE_TOLERANCE * max(scale, 1.0)
    report = ParityReport(float(diffs[0]), float(diffs[1]), scale, tolerance, len(windows))
    if not report.passed or not np.isfinite(diffs).all():
        raise ParityError(onnx_path, f"ONNX output differs from PyTorch on {len(windows)} windows (max abs diff "
                                     f"signal {diffs[0]:.3g}, peak logits {diffs[1]:.3g} > tolerance {tolerance:.3g}); "
                                     f"refusing to register this export")
    return report
