"""The seed's network: window -> Hilbert image -> Conv2d stack -> Dense stack -> two heads.

Shape contract: ``(N, window_bins)`` (or ``(N, input_channels, window_bins)``
with genome channels, config ``"input_channels"``, default 1) -> ``(signal, peak_logits)``, each
``(N, target_bins)``; ``window_bins`` must be a power of 4 (4096 -> 64 x 64).

The architecture is a JSON dict whose ``layers`` the morphisms edit::

    {"space": "hilbert2d", "window_bins": 4096, "target_bins": 1024,
     "layers": [{"type": "conv", "filters": 8, "kernel": 3, "concat": null},
                {"type": "residual", "hidden": 8, "kernel": 3},
                {"type": "dense", "units": 128}]}

An optional ``"layout": "rowmajor"`` fills the image row by row instead of
along the Hilbert curve (the seed's plain-2D comparison); absent means ``"hilbert"``.

An optional ``"readout": "per-bin"`` replaces the seed's flatten -> dense
readout (absent means ``"dense"``): the last feature map is laid back along the
window, its centre ``target_bins`` cropped, and each bin's channels go through
the two heads as 1x1 convolutions (no dense layers allowed). Why: the seed's
dense readout squeezes 1024 output bins through one hidden layer of 64-256
units and must learn every output position separately, which the coverage
data here cannot teach it (``benchmarks/diagnose_hilbert2d.py``); the per-bin
readout shares the heads across positions, as a fully convolutional net does.

Feature maps are numbered: 0 is the input image (``input_channels`` channels:
the signal in ``log1p`` units, then any genome channels),
``i`` is the output of trunk layer ``i - 1``. Trunk layers come first:

* ``conv``: ``relu(conv2d(h))`` with same padding; with ``"concat": j`` its input
  is ``cat([h, feature j])`` (the seed's final model feeds the input image back
  in this way);
* ``residual``: ``relu(h + conv_b(relu(conv_a(h))))``, channels unchanged.

Every trunk feature map is non-negative. The last one is flattened
(channel-major) into the ``dense`` layers (``relu(linear)``), followed by two
linear heads of ``target_bins``: signal (``exp(.)``, original units) and
peak logits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from atacdenoise.models.common import (
    Denoiser, check_odd_kernel, check_positive_int,
)

SPACE = "hilbert2d"
TRUNK_TYPES = ("conv", "residual")
LAYOUTS = ("hilbert", "rowmajor")  # optional config key "layout"; absent means "hilbert"
READOUTS = ("dense", "per-bin")  # optional config key "readout"; absent means "dense" (the seed's)

# The seed's random search for the initial model (one Conv2D -> one Dense).
SEED_KERNELS = (3, 5, 7)
SEED_FILTERS = (4, 8, 16, 32)
SEED_HIDDEN_UNITS = (64, 128, 256)


class ConvBlock(nn.Module):
    """``relu(conv2d(h))`` with same padding."""

    def __init__(self, in_channels: int, filters: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, filters, kernel, padding=kernel // 2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(h))


class ResidualBlock2d(nn.Module):
    """``relu(h + conv_b(relu(conv_a(h))))``: the identity on ``h >= 0`` when ``conv_b`` is zero."""

    def __init__(self, channels: int, hidden: int, kernel: int):
        super().__init__()
        self.conv_a = nn.Conv2d(channels, hidden, kernel, padding=kernel // 2)
        self.conv_b = nn.Conv2d(hidden, channels, kernel, padding=kernel // 2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(h + self.conv_b(torch.relu(self.conv_a(h))))


class Hilbert2DNet(Denoiser):
    """The seed's 2D CNN on the Hilbert-curve image of the window."""

    space = SPACE

    def __init__(self, config: dict):
        super().__init__(config)
        self.side = grid_side(self.window_bins)
        trunk, dense = split_layers(config)
        self.feature_channels = trunk_channels(trunk, self.encoder.out_channels)
        # The layout as a gather: grid_flat = values[grid_order].
        perm = layout_permutation(config.get("layout", "hilbert"), self.window_bins)
        self.register_buffer("grid_order", torch.from_numpy(np.argsort(perm)), persistent=False)
        self.register_buffer("window_order", torch.from_numpy(perm.copy()), persistent=False)
        self.readout = readout_of(config)

        self.concat_sources = [layer.get("concat") if layer["type"] == "conv" else None for layer in trunk]
        self.blocks = nn.ModuleList(
            make_trunk_block(layer, self.block_in_channels(i)) for i, layer in enumerate(trunk))
        self.dense = nn.ModuleList()
        if self.readout == "per-bin":
            self.signal_head = nn.Conv1d(self.feature_channels[-1], 1, 1)
            self.peak_head = nn.Conv1d(self.feature_channels[-1], 1, 1)
            return
        width = self.feature_channels[-1] * self.side * self.side
        for layer in dense:
            self.dense.append(nn.Linear(width, layer["units"]))
            width = layer["units"]
        self.signal_head = nn.Linear(width, self.target_bins)
        self.peak_head = nn.Linear(width, self.target_bins)

    def block_in_channels(self, index: int) -> int:
        """Input channels of trunk block ``index``: its previous feature plus any concatenated one."""
        channels = self.feature_channels[index]
        source = self.concat_sources[index]
        return channels if source is None else channels + self.feature_channels[source]

    def to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, window_bins)`` (or ``(N, window_bins)``: C = 1) -> ``(N, C, side, side)`` along the
        Hilbert curve (no unit change)."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return torch.index_select(x, 2, self.grid_order).reshape(-1, x.shape[1], self.side, self.side)

    def readout_features(self, x: torch.Tensor) -> torch.Tensor:
        """What the heads read: ``(N, channels, target_bins)`` per bin, or ``(N, units)`` after the dense layers."""
        h = self.to_grid(self.encoder(x))
        features = [h]
        for block, source in zip(self.blocks, self.concat_sources):
            if source is not None:
                h = torch.cat([h, features[source]], dim=1)
            h = block(h)
            features.append(h)
        if self.readout == "per-bin":  # back along the window, then the predicted centre
            return self.crop_centre(torch.index_select(h.flatten(2), 2, self.window_order))
        h = h.flatten(1)
        for layer in self.dense:
            h = torch.relu(layer(h))
        return h

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.readout_features(x)
        if self.readout == "per-bin":
            return self.decode(self.signal_head(h)[:, 0]), self.peak_head(h)[:, 0]
        return self.decode(self.signal_head(h)), self.peak_head(h)


# ---------------------------------------------------------------- config helpers

def grid_side(window_bins: int) -> int:
    side = int(round(window_bins ** 0.5))
    if side * side != window_bins or side & (side - 1):
        raise ValueError(f"hilbert2d needs window_bins to be a power of 4, got {window_bins}")
    return side


def layout_permutation(layout: str, window_bins: int) -> np.ndarray:
    """Flat grid cell of every window bin: along the Hilbert curve (the seed's choice and the
    default), or ``"rowmajor"``, the plain reshape the seed compared it with (its Figure 4)."""
    if layout == "hilbert":
        from atacdenoise.tracks.hilbert import grid_permutation

        return np.asarray(grid_permutation(window_bins), dtype=np.int64)
    if layout == "rowmajor":
        return np.arange(window_bins, dtype=np.int64)
    raise ValueError(f"hilbert2d config: 'layout' must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def readout_of(config: dict) -> str:
    readout = config.get("readout", "dense")
    if readout not in READOUTS:
        raise ValueError(f"hilbert2d config: 'readout' must be one of {', '.join(READOUTS)}, got {readout!r}")
    if readout == "per-bin" and any(layer.get("type") == "dense" for layer in config.get("layers", [])):
        raise ValueError("hilbert2d config: a per-bin readout takes no dense layers")
    return readout


def split_layers(config: dict) -> tuple[list[dict], list[dict]]:
    """Validate ``config["layers"]`` and split it into trunk layers and dense layers."""
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise ValueError("hilbert2d config: 'layers' must be a list")
    trunk = [layer for layer in layers if layer.get("type") in TRUNK_TYPES]
    dense = [layer for layer in layers if layer.get("type") == "dense"]
    if layers != trunk + dense:
        raise ValueError("hilbert2d config: layers must be conv/residual layers followed by dense layers")
    for i, layer in enumerate(trunk):
        where = f"hilbert2d layer {i}"
        check_odd_kernel(layer, "kernel", where)
        if layer["type"] == "conv":
            check_positive_int(layer, "filters", where)
            source = layer.get("concat")
            if source is not None and (isinstance(source, bool) or not isinstance(source, int)
                                       or not 0 <= source < i):
                raise ValueError(f"{where}: 'concat' must name an earlier feature map in [0, {i}), got {source!r}")
        else:
            check_positive_int(layer, "hidden", where)
    for layer in dense:
        check_positive_int(layer, "units", "hilbert2d dense layer")
    return trunk, dense


def trunk_channels(trunk: list[dict], input_channels: int = 1) -> list[int]:
    """Channels of every feature map: ``[input_channels, out(layer 0), out(layer 1), ...]``."""
    channels = [input_channels]
    for layer in trunk:
        channels.append(layer["filters"] if layer["type"] == "conv" else channels[-1])
    return channels


def make_trunk_block(layer: dict, in_channels: int) -> nn.Module:
    if layer["type"] == "conv":
        return ConvBlock(in_channels, layer["filters"], layer["kernel"])
    return ResidualBlock2d(in_channels, layer["hidden"], layer["kernel"])


def conv_layer(filters: int, kernel: int, concat: int | None = None) -> dict:
    return {"type": "conv", "filters": int(filters), "kernel": int(kernel), "concat": concat}


def residual_layer(hidden: int, kernel: int) -> dict:
    return {"type": "residual", "hidden": int(hidden), "kernel": int(kernel)}


def dense_layer(units: int) -> dict:
    return {"type": "dense", "units": int(units)}


def make_config(layers: list[dict], window_bins: int = 4096, target_bins: int = 1024) -> dict:
    return {"space": SPACE, "window_bins": int(window_bins), "target_bins": int(target_bins), "layers": layers}


def random_initial_config(rng: np.random.Generator, window_bins: int = 4096, target_bins: int = 1024) -> dict:
    """The seed's random search: one Conv2D (kernel, filters) -> one Dense (hidden units)."""
    return make_config([conv_layer(rng.choice(SEED_FILTERS), rng.choice(SEED_KERNELS)),
                        dense_layer(rng.choice(SEED_HIDDEN_UNITS))], window_bins, target_bins)


def seed_final_config(window_bins: int = 4096, target_bins: int = 1024, filters: int = 16,
                      kernel: int = 3, units: int = 256) -> dict:
    """The shape of the seed's final model (its Figure 6): two convs, the second's output
    concatenated with the input image into a third conv, then two hidden Dense layers
    and the output layer. The paper gives no widths; ``filters``/``units`` are ours."""
    return make_config([conv_layer(filters, kernel), conv_layer(filters, kernel),
                        conv_layer(filters, kernel, concat=0), dense_layer(units), dense_layer(units)],
                       window_bins, target_bins)
