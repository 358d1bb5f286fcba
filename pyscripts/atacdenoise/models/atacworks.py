"""AtacWorks' published ResNet (Lal et al. 2021, ``DenoisingResNet``), re-implemented as a baseline.

Shape contract: ``(N, window_bins)`` -> ``(signal, peak_logits)``, each
``(N, target_bins)``; the whole window is processed and the centre bins are
cropped at the end.

Architecture (the published configuration: kernel 51, dilation 8, 15 filters):

* regression: 5 residual blocks; each is three dilated Conv1d (ReLU, ReLU, none),
  plus the block input (through a 1x1 conv + ReLU in the first block, which
  lifts 1 channel to 15), then ReLU; regression output = ReLU(1x1 conv);
* classification: the regression track goes through 2 more residual blocks
  (with bias) and a 1x1 conv. AtacWorks ends in a sigmoid; we return the logits
  (``atacworks_loss`` applies the sigmoid inside a stable BCE).

Units follow AtacWorks rather than the NASH spaces: raw signal in, ReLU
signal out (no log1p/expm1), which is what its loss weights (0.0005 * MSE) assume.
"""

from __future__ import annotations

import torch
from torch import nn

from atacdenoise.models.common import Denoiser, check_odd_kernel, check_positive_int

SPACE = "atacworks"


def same_conv1d(in_channels: int, out_channels: int, kernel: int, dilation: int = 1, bias: bool = True) -> nn.Conv1d:
    return nn.Conv1d(in_channels, out_channels, kernel, dilation=dilation,
                     padding=dilation * (kernel // 2), bias=bias)


class AtacWorksResBlock(nn.Module):
    """Three dilated convs plus a (projected) skip, then ReLU."""

    def __init__(self, in_channels: int, channels: int, kernel: int, dilation: int, bias: bool):
        super().__init__()
        # AtacWorks projects the input with a bias-free 1x1 conv (+ReLU) only where channels change.
        self.project = (nn.Sequential(same_conv1d(in_channels, channels, 1, bias=False), nn.ReLU())
                        if in_channels != channels else nn.Identity())
        self.conv1 = same_conv1d(in_channels, channels, kernel, dilation, bias)
        self.conv2 = same_conv1d(channels, channels, kernel, dilation, bias)
        self.conv3 = same_conv1d(channels, channels, kernel, dilation, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        return torch.relu(self.conv3(h) + self.project(x))


def res_stack(n_blocks: int, channels: int, kernel: int, dilation: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(*(AtacWorksResBlock(1 if i == 0 else channels, channels, kernel, dilation, bias)
                           for i in range(n_blocks)))


class AtacWorksNet(Denoiser):
    """AtacWorks ``DenoisingResNet``: regression trunk, then a classifier on the regression track."""

    space = SPACE

    def __init__(self, config: dict):
        super().__init__(config)
        c = {key: check_positive_int(config, key) for key in
             ("channels", "blocks", "dilation", "class_channels", "class_blocks", "class_dilation")}
        kernel = check_odd_kernel(config, "kernel", "atacworks config")
        class_kernel = check_odd_kernel(config, "class_kernel", "atacworks config")
        # The published model has no bias in the regression convs and bias in the classifier's.
        self.res_blocks = res_stack(c["blocks"], c["channels"], kernel, c["dilation"], bias=False)
        self.regressor = same_conv1d(c["channels"], 1, 1, bias=False)
        self.class_blocks = res_stack(c["class_blocks"], c["class_channels"], class_kernel,
                                      c["class_dilation"], bias=True)
        self.classifier = same_conv1d(c["class_channels"], 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        track = torch.relu(self.regressor(self.res_blocks(x.unsqueeze(1))))
        logits = self.classifier(self.class_blocks(track))
        return self.crop_centre(track.squeeze(1)), self.crop_centre(logits.squeeze(1))


def make_config(window_bins: int = 4096, target_bins: int = 1024, channels: int = 15, blocks: int = 5,
                kernel: int = 51, dilation: int = 8, class_channels: int = 15, class_blocks: int = 2,
                class_kernel: int = 51, class_dilation: int = 8) -> dict:
    """The published configuration by default; smaller ones for tests."""
    return {"space": SPACE, "window_bins": int(window_bins), "target_bins": int(target_bins),
            "channels": channels, "blocks": blocks, "kernel": kernel, "dilation": dilation,
            "class_channels": class_channels, "class_blocks": class_blocks,
            "class_kernel": class_kernel, "class_dilation": class_dilation}
