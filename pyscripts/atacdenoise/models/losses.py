"""Training losses. All take ``(N, target_bins)`` tensors; signals are in original units."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def peak_bce(peak_logits: torch.Tensor, peak_labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits (numerically stable sigmoid inside)."""
    return F.binary_cross_entropy_with_logits(peak_logits, peak_labels.to(peak_logits.dtype))


def denoise_loss(signal: torch.Tensor, target: torch.Tensor, peak_logits: torch.Tensor | None = None,
                 peak_labels: torch.Tensor | None = None, peak_weight: float = 1.0,
                 log_space: bool = False, pearson_weight: float = 0.0, mse_weight: float = 0.0) -> torch.Tensor:
    """MSE (the seed's metric) + ``peak_weight`` * BCE-with-logits when peak labels are given.

    ``log_space=True`` compares ``log1p`` of both signals instead: gentler
    gradients on deep, heavy-tailed coverage (the reported metric stays MSE).
    ``pearson_weight`` adds ``(1 - Pearson)`` per window in original units
    (as AtacWorks does): the log makes peak heights cheap to get wrong, and
    per-base Pearson is decided by them. ``mse_weight`` adds MSE in original
    units to a log-space loss: per-window Pearson ignores how tall one window's
    peaks are next to another's, and per-base Pearson over a chromosome does not.
    """
    loss = 0.0
    if pearson_weight:
        loss = pearson_weight * (1.0 - pearson_per_row(signal, target)).mean()
    if mse_weight and log_space:
        loss = loss + mse_weight * F.mse_loss(signal, target)
    if log_space:
        signal, target = torch.log1p(torch.clamp(signal, min=0.0)), torch.log1p(target)
    loss = loss + F.mse_loss(signal, target)
    if peak_labels is not None and peak_logits is not None and peak_weight:
        loss = loss + peak_weight * peak_bce(peak_logits, peak_labels)
    return loss


def pearson_per_row(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b``: ``(N, L)`` -> ``(N,)``."""
    a = a - a.mean(dim=-1, keepdim=True)
    b = b - b.mean(dim=-1, keepdim=True)
    covariance = (a * b).sum(dim=-1)
    # eps inside the root: a constant row (e.g. a dead ReLU output) would otherwise give sqrt'(0) = inf
    # and NaN gradients, which is how the AtacWorks baseline first diverged.
    scale = torch.sqrt((a * a).sum(dim=-1) * (b * b).sum(dim=-1) + eps)
    return covariance / scale


def atacworks_loss(signal: torch.Tensor, target: torch.Tensor, peak_logits: torch.Tensor,
                   peak_labels: torch.Tensor, mse_weight: float = 0.0005, pearson_weight: float = 1.0,
                   bce_weight: float = 1.0) -> torch.Tensor:
    """AtacWorks' loss: ``0.0005 * MSE + (1 - Pearson) + BCE``.

    Pearson is computed per window and averaged over the batch; a constant
    window (zero variance) counts as correlation 0.
    """
    loss = mse_weight * F.mse_loss(signal, target)
    loss = loss + pearson_weight * (1.0 - pearson_per_row(signal, target)).mean()
    return loss + bce_weight * peak_bce(peak_logits, peak_labels)
