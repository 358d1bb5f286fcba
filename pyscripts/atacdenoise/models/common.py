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

Config ``"output": "linear"`` makes the signal head's output the signal itself
(the seed's linear output layer, trained on MSE of the peak-signal
representation, which is 0 outside peaks: ``exp`` must push most bins towards
minus infinity, and learns slower there; see ``benchmarks/diagnose_hilbert2d.py``).
A linear head may predict below 0; ``denoise`` clips its output at 0.

Layout changes (the Hilbert 64 x 64 image) happen inside ``forward`` through a
registered index buffer, so an exported ONNX graph contains them.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

MAX_LOG_SIGNAL = 30.0
OUTPUTS = ("exp", "linear")  # config key "output"; absent means "exp"


class Denoiser(nn.Module):
    """Base class: stores the plain-JSON config and the window geometry."""

    space: str = ""

    def __init__(self, config: dict):
        super().__init__()
        self.window_bins = check_positive_int(config, "window_bins")
        self.target_bins = check_positive_int(config, "target_bins")
        if self.target_bins > self.window_bins:
            raise ValueError(f"target_bins {self.target_bins} exceeds window_bins {self.window_bins}")
        self.encoder = InputEncoder(config)
        self.input_channels = self.encoder.input_channels
        self.output = config.get("output", "exp")
        if self.output not in OUTPUTS:
            raise ValueError(f"config: 'output' must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        self._config = copy.deepcopy(config)

    def to_config(self) -> dict:
        """The architecture as plain JSON; ``build_model(model.to_config())`` rebuilds it."""
        return copy.deepcopy(self._config)

    @property
    def flank(self) -> int:
        """Bins left of the predicted centre (as in ``tracks.windows.WindowSpec``)."""
        return (self.window_bins - self.target_bins) // 2

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Signal head output -> signal: :func:`decode_signal`, or ``z`` itself for a linear output."""
        return z if self.output == "linear" else decode_signal(z)

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


class InputEncoder(nn.Module):
    """The network's first step: ``x`` -> ``(N, out_channels, W)`` for the trunk.

    The signal gets ``log1p`` and genome channels pass as they are
    (:func:`encode_channels`). With ``config["sequence_tower"] = {"first": i,
    "width": w, "filters": f}``, input channels ``i .. i + w - 1`` hold the
    per-base codes of each bin (``io.genome.BASE_CODE``: 1-4 = A, C, G, T,
    0 = N; ``w`` = bases per bin): they are one-hot encoded and a learned 1x1
    convolution over the ``4 w`` values -- a convolution over bases with kernel
    and stride of one bin -- turns each bin's sequence into ``f`` features
    (ReLU), appended after the other channels. Without a tower it has no parameters.
    """

    def __init__(self, config: dict):
        super().__init__()
        self.input_channels = config.get("input_channels", 1)
        check_positive_int({"input_channels": self.input_channels}, "input_channels")
        tower = config.get("sequence_tower")
        self.tower_first = self.tower_width = 0
        self.out_channels = self.input_channels
        if tower is not None:
            where = "sequence_tower"
            self.tower_first = check_positive_int(tower, "first", where)
            self.tower_width = check_positive_int(tower, "width", where)
            filters = check_positive_int(tower, "filters", where)
            if self.tower_first + self.tower_width > self.input_channels:
                raise ValueError(f"{where}: channels {self.tower_first}..{self.tower_first + self.tower_width - 1} "
                                 f"exceed the {self.input_channels} input channels")
            self.tower = nn.Conv1d(4 * self.tower_width, filters, 1)
            self.out_channels = self.input_channels - self.tower_width + filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.tower_width:
            return encode_channels(x)
        first, last = self.tower_first, self.tower_first + self.tower_width
        codes = x[:, first:last]
        onehot = torch.cat([(codes == base).to(x.dtype) for base in (1.0, 2.0, 3.0, 4.0)], dim=1)
        rest = torch.cat([x[:, :first], x[:, last:]], dim=1)
        return torch.cat([encode_channels(rest), torch.relu(self.tower(onehot))], dim=1)


def decode_signal(z: torch.Tensor) -> torch.Tensor:
    """Head output -> signal in original units: ``expm1(softplus(z))``, which is simply ``exp(z)``.

    So ``log1p(signal) = softplus(z) >= 0``: the head predicts in log1p units and
    the signal is positive. A ReLU here would be exactly zero on empty bins but
    lets whole heads die (every bin pushed below zero gets no gradient again);
    ``exp`` keeps a gradient everywhere and reaches ~0 for very negative ``z``.
    The clamp only guards against overflow (e**30 is far above any coverage).
    """
    return torch.exp(torch.clamp(z, max=MAX_LOG_SIGNAL))


@torch.no_grad()
def set_peak_prior(model: nn.Module, positive_rate: float) -> nn.Module:
    """Start the peak head at the labels' base rate everywhere: zero weights, bias = log-odds of ``positive_rate``.

    Why: a fresh head starts at probability 0.5 everywhere, and BCE's first job is
    then to push every logit down. With ~2 % of bins in peaks, the sum of
    that push over the negatives dominates, and it works through the weights as
    much as the bias: the features most active are the ones in peaks (ReLU
    features grow with the signal), so the head learns "more signal, lower
    logit" -- peak probability upside down (the demo model's AUROC was 0.02).
    At the base rate the negatives' and positives' pulls balance and the
    weights move the right way from the first step (the prior initialisation
    of Lin et al. 2017, focal loss). The weights start at zero too: random ones
    project the trunk's signal features with a random sign, and while the signal
    loss shapes the trunk in the first epochs, a negative projection ranks
    peaks last before BCE can turn it (seen in 1 of 4 random starts). From
    zero, the first BCE step sets the sign from the labels.
    """
    rate = min(max(float(positive_rate), 1e-6), 1 - 1e-6)
    head = model.peak_head if hasattr(model, "peak_head") else model.classifier  # atacworks: its classifier
    head.weight.zero_()
    head.bias.fill_(float(np.log(rate / (1.0 - rate))))
    return model


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
