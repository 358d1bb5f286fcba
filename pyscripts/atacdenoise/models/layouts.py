"""The three input layouts of the seed's initial random search (its Figure 4).

The seed drew one-conv / one-dense networks (kernel, filters, hidden units) and
trained the same draws on three views of a window:

* ``1d``: the window as a 1D track, through :class:`Conv1DDenseNet` below;
* ``2d``: the window reshaped row by row into a 64 x 64 image (``hilbert2d``
  with ``"layout": "rowmajor"``);
* ``hilbert``: the window along the Hilbert curve (``hilbert2d``, its default).

The 1D analogue of a 2D draw with kernel ``k`` uses a Conv1d of kernel ``k*k``:
the same filters, the same number of weights per filter (so the same parameter
count as both 2D arms) and a receptive field of ``k*k`` bins, as many as the 2D
kernel covers. Only the neighbourhood a filter sees differs between the arms,
which is what the figure compares.

Config of the 1D model (space ``conv1d``)::

    {"space": "conv1d", "window_bins": 4096, "target_bins": 1024,
     "layers": [{"type": "conv", "filters": 8, "kernel": 25}, {"type": "dense", "units": 128}]}
"""

from __future__ import annotations

import torch
from torch import nn

from atacdenoise.models import hilbert2d
from atacdenoise.models.common import Denoiser, check_odd_kernel, check_positive_int, encode_input

SPACE = "conv1d"
LAYOUTS = ("1d", "2d", "hilbert")
LAYOUT_LABELS = {"1d": "1Dconv", "2d": "2Dconv (row-major)", "hilbert": "2Dconv + Hilbert"}


class Conv1DDenseNet(Denoiser):
    """``relu(conv1d(log1p(x)))`` (same padding) -> flatten -> ``relu(dense)`` -> signal and peak heads."""

    space = SPACE

    def __init__(self, config: dict):
        super().__init__(config)
        conv, dense = split_layers(config)
        # A 1D convolution written as a Conv2d over a 1 x window_bins image: the same
        # arithmetic, but PyTorch's CPU backward for long Conv1d kernels (49 bins) is ~4x slower.
        self.conv = nn.Conv2d(1, conv["filters"], (1, conv["kernel"]), padding=(0, conv["kernel"] // 2))
        self.dense = nn.Linear(conv["filters"] * self.window_bins, dense["units"])
        self.signal_head = nn.Linear(dense["units"], self.target_bins)
        self.peak_head = nn.Linear(dense["units"], self.target_bins)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.conv(encode_input(x)[:, None, None, :]))  # (N, filters, 1, window_bins)
        h = torch.relu(self.dense(h.flatten(1)))  # channel-major, as in hilbert2d
        return self.decode(self.signal_head(h)), self.peak_head(h)


def split_layers(config: dict) -> tuple[dict, dict]:
    """Validate the two layers of a ``conv1d`` config: one conv, then one dense."""
    layers = config.get("layers")
    if not (isinstance(layers, list) and len(layers) == 2 and isinstance(layers[0], dict)
            and isinstance(layers[1], dict) and [layer.get("type") for layer in layers] == ["conv", "dense"]):
        raise ValueError("conv1d config: 'layers' must be one conv layer followed by one dense layer")
    conv, dense = layers
    check_odd_kernel(conv, "kernel", "conv1d conv layer")
    check_positive_int(conv, "filters", "conv1d conv layer")
    check_positive_int(dense, "units", "conv1d dense layer")
    return conv, dense


def make_config(filters: int, kernel: int, units: int, window_bins: int = 4096, target_bins: int = 1024) -> dict:
    return {"space": SPACE, "window_bins": int(window_bins), "target_bins": int(target_bins),
            "layers": [{"type": "conv", "filters": int(filters), "kernel": int(kernel)},
                       {"type": "dense", "units": int(units)}]}


def draw(rng) -> dict:
    """One draw of the seed's random search: ``{"kernel", "filters", "units"}``."""
    return {"kernel": int(rng.choice(hilbert2d.SEED_KERNELS)), "filters": int(rng.choice(hilbert2d.SEED_FILTERS)),
            "units": int(rng.choice(hilbert2d.SEED_HIDDEN_UNITS))}


def layout_config(layout: str, kernel: int, filters: int, units: int, window_bins: int = 4096,
                  target_bins: int = 1024) -> dict:
    """The config of one draw in one layout (``kernel`` is the 2D kernel side)."""
    if layout == "1d":
        return make_config(filters, kernel * kernel, units, window_bins, target_bins)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    config = hilbert2d.make_config([hilbert2d.conv_layer(filters, kernel), hilbert2d.dense_layer(units)],
                                   window_bins, target_bins)
    if layout == "2d":
        config["layout"] = "rowmajor"
    return config  # "hilbert": the default config, exactly as the search builds it
