"""What every denoising network shares: the shape contract, units and config handling.

Shape contract (all spaces, so training, ONNX export and denoising treat them alike)::

    x:            float32 (N, window_bins)   binned signal of one window, original units
                  or (N, input_channels, window_bins) with genome channels: channel 0 the
                  signal, 1.. the ``tracks.channels`` renderings (config ``input_channels``)
    signal:       float32 (N, target_bins)   denoised centre bins, original units, >= 0
    peak_logits:  float32 (N, target_bins)   per-bin peak logits (sigmoid -> probability)

Units. The NASH spaces (``hilbert2d``, ``dilated1d``) see ``log1p(x)`` and predict
``z`` with ``signal = expm1(softplus(z)) = exp(z)`` (see ``decode_signal``).
Coverage is heavy-tailed, so the log keeps activations tame whatever the
sequencing depth, while the outputs stay in the units of the clean track (the
seed's MSE is measured there). Both transforms sit at the two ends of the
network, so they never get in the way of the function-preserving morphisms,
which edit only what lies between. The AtacWorks
baseline keeps its published raw-in / ReLU-out units (see ``atacworks.py``).

Layout changes (the Hilbert 64 x 64 image) happen inside ``forward`` through a
registered index buffer, so an exported ONNX graph contains them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

MAX_LOG_SIGNAL = 30.0


class Denoiser(nn.Module):
    """Base class: stores the plain-JSON config and the window geometry."""

    space: str = ""

    def __init__(self, config: dict):
        super().__init__()
        self.window_bins = check_positive_int(config, "window_bins")
        self.target_bins = check_positive_int(config, "target_bins")
        if self.target_bins > self.window_bins:
            raise ValueError(f"target_bins {self.target_bins} exceeds window_bins {self.window_bins}")
        self.input_channels = config.get("input_channels", 1)
        check_positive_int({"input_channels": self.input_channels}, "input_channels")
        self._config = copy.deepcopy(config)

    def to_config(self) -> dict:
        """The architecture as plain JSON; ``build_model(model.to_config())`` rebuilds it."""
        return copy.deepcopy(self._config)

    @property
    def flank(self) -> int:
        """Bins left of the predicted centre (as in ``tracks.windows.WindowSpec``)."""
        return (self.window_bins - self.target_bins) // 2

    def crop_centre(self, h: torch.Tensor) -> torch.Tensor:
        """``(..., window_bins)`` -> ``(..., target_bins)``: the bins the model predicts."""
        return h[..., self.flank:self.flank + self.target_bins]


def encode_input(x: torch.Tensor) -> torch.Tensor:
    """Network-side input: ``log1p`` of the (non-negative) signal.

    The clamp keeps every trunk feature map non-negative, which the identity
    morphisms rely on (``relu(identity(h)) == h`` needs ``h >= 0``).
    """
    return torch.log1p(torch.clamp(x, min=0.0))


def encode_channels(x: torch.Tensor) -> torch.Tensor:
    """``(N, W)`` signal or ``(N, C, W)`` signal + genome channels -> ``(N, C, W)`` network input.

    The signal gets :func:`encode_input`; genome channels are already in [0, 1]
    (``tracks.channels``) and are only clamped, so every channel stays >= 0.
    """
    if x.dim() == 2:
        return encode_input(x).unsqueeze(1)
    return torch.cat([encode_input(x[:, :1]), torch.clamp(x[:, 1:], min=0.0)], dim=1)


def decode_signal(z: torch.Tensor) -> torch.Tensor:
    """Head output -> signal in original units: ``expm1(softplus(z))``, which is simply ``exp(z)``.

    So ``log1p(signal) = softplus(z) >= 0``: the head predicts in log1p units and
    the signal is positive. A ReLU here would be exactly zero on empty bins but
    lets whole heads die (every bin pushed below zero gets no gradient again);
    ``exp`` keeps a gradient everywhere and reaches ~0 for very negative ``z``.
    The clamp only guards against overflow (e**30 is far above any coverage).
    """
    return torch.exp(torch.clamp(z, max=MAX_LOG_SIGNAL))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_positive_int(mapping: dict, key: str, where: str = "config") -> int:
    value = mapping.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    return value


def check_odd_kernel(mapping: dict, key: str = "kernel", where: str = "layer") -> int:
    value = check_positive_int(mapping, key, where)
    if value % 2 == 0:
        raise ValueError(f"{where}: {key!r} must be odd for 'same' padding, got {value}")
    return value
