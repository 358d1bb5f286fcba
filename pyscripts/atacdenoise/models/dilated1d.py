"""An AtacWorks-style search space: dilated residual Conv1d on the window as a 1D track.

Shape contract: ``(N, window_bins)`` (or ``(N, input_channels, window_bins)``
with genome channels) -> ``(signal, peak_logits)``, each
``(N, target_bins)``: the trunk runs on the whole window (context), the heads
(1x1 convs) read only the centre ``target_bins``.

Config::

    {"space": "dilated1d", "window_bins": 4096, "target_bins": 1024, "channels": 16,
     "layers": [{"type": "stem", "kernel": 9},
                {"type": "residual", "kernel": 9, "dilation": 4}, ...]}

An optional ``"input_channels": C`` (default 1) gives the stem C input channels:
the signal and C - 1 genome channels (``tracks.channels``), and an optional
``"sequence_tower"`` a learned sequence tower in front of it (``common.InputEncoder``).

``stem`` is ``relu(conv1d(log1p(x)))`` to ``channels``; each ``residual`` block is
``relu(h + conv_b(relu(conv_a(h))))`` with both convs dilated and ``channels``
wide, so a block with a zero ``conv_b`` is the identity (every feature map is
non-negative) -- the deepen morphism inserts exactly that.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from atacdenoise.models.common import (
    Denoiser, check_odd_kernel, check_positive_int,
)

SPACE = "dilated1d"


def same_conv1d(in_channels: int, out_channels: int, kernel: int, dilation: int = 1) -> nn.Conv1d:
    return nn.Conv1d(in_channels, out_channels, kernel, dilation=dilation, padding=dilation * (kernel // 2))


class ResidualBlock1d(nn.Module):
    """``relu(h + conv_b(relu(conv_a(h))))`` with dilated same-padded convs."""

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.conv_a = same_conv1d(channels, channels, kernel, dilation)
        self.conv_b = same_conv1d(channels, channels, kernel, dilation)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(h + self.conv_b(torch.relu(self.conv_a(h))))


class Dilated1DNet(Denoiser):
    """Stem conv, dilated residual blocks, 1x1 heads over the centre bins."""

    space = SPACE

    def __init__(self, config: dict):
        super().__init__(config)
        channels = check_positive_int(config, "channels")
        stem, blocks = split_layers(config)
        self.stem = same_conv1d(self.encoder.out_channels, channels, stem["kernel"])
        self.blocks = nn.ModuleList(ResidualBlock1d(channels, b["kernel"], b["dilation"]) for b in blocks)
        self.signal_head = nn.Conv1d(channels, 1, 1)
        self.peak_head = nn.Conv1d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The centre bins see only ``receptive_field`` bins either side: the rest of the
        # window is cut before the trunk, which gives the same outputs at a fraction of the work.
        margin = max(self.flank - self.receptive_field, 0)
        x = x[..., margin:self.window_bins - margin]
        h = torch.relu(self.stem(self.encoder(x)))
        for block in self.blocks:
            h = block(h)
        h = h[..., self.flank - margin:self.flank - margin + self.target_bins]
        return self.decode(self.signal_head(h).squeeze(1)), self.peak_head(h).squeeze(1)

    @property
    def receptive_field(self) -> int:
        """Input bins either side of an output bin that can change it."""
        convs = [self.stem] + [conv for block in self.blocks for conv in (block.conv_a, block.conv_b)]
        return sum(conv.dilation[0] * (conv.kernel_size[0] // 2) for conv in convs)


def split_layers(config: dict) -> tuple[dict, list[dict]]:
    """Validate ``config["layers"]``: one stem, then residual blocks."""
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers or layers[0].get("type") != "stem":
        raise ValueError("dilated1d config: 'layers' must start with a stem layer")
    check_odd_kernel(layers[0], "kernel", "dilated1d stem")
    for i, layer in enumerate(layers[1:], start=1):
        where = f"dilated1d layer {i}"
        if layer.get("type") != "residual":
            raise ValueError(f"{where}: expected a residual layer, got {layer.get('type')!r}")
        check_odd_kernel(layer, "kernel", where)
        check_positive_int(layer, "dilation", where)
    return layers[0], layers[1:]


def residual_layer(kernel: int, dilation: int) -> dict:
    return {"type": "residual", "kernel": int(kernel), "dilation": int(dilation)}


def make_config(channels: int = 16, stem_kernel: int = 9, blocks: list[dict] | None = None,
                window_bins: int = 4096, target_bins: int = 1024, input_channels: int = 1) -> dict:
    blocks = [residual_layer(9, 4), residual_layer(9, 8)] if blocks is None else blocks
    config = {"space": SPACE, "window_bins": int(window_bins), "target_bins": int(target_bins),
              "channels": int(channels), "layers": [{"type": "stem", "kernel": int(stem_kernel)}, *blocks]}
    if input_channels != 1:
        config["input_channels"] = int(input_channels)
    return config


def random_initial_config(rng: np.random.Generator, window_bins: int = 4096, target_bins: int = 1024) -> dict:
    """A small random starting point: stem and one residual block."""
    kernel = int(rng.choice((5, 9, 15)))
    return make_config(int(rng.choice((8, 16))), kernel, [residual_layer(kernel, int(rng.choice((2, 4, 8))))],
                       window_bins, target_bins)
