"""Architectures as plain JSON: build a model from its config, and default configs per space.

``build_model(model.to_config())`` rebuilds the same architecture (fresh
weights), so the search stores an architecture as JSON plus a ``state_dict``.
"""

from __future__ import annotations

import numpy as np

from atacdenoise.models import atacworks, dilated1d, hilbert2d, layouts
from atacdenoise.models.common import Denoiser

MODEL_CLASSES: dict[str, type[Denoiser]] = {
    hilbert2d.SPACE: hilbert2d.Hilbert2DNet,
    dilated1d.SPACE: dilated1d.Dilated1DNet,
    atacworks.SPACE: atacworks.AtacWorksNet,
    layouts.SPACE: layouts.Conv1DDenseNet,  # the 1D arm of the seed's layout comparison (Figure 4)
}
SPACES = tuple(MODEL_CLASSES)


def build_model(config: dict) -> Denoiser:
    """A freshly initialised model for ``config``; ValueError names what is wrong with it."""
    if not isinstance(config, dict):
        raise ValueError(f"model config must be a dict, got {type(config).__name__}")
    space = config.get("space")
    if space not in MODEL_CLASSES:
        raise ValueError(f"model config: unknown space {space!r} (known: {', '.join(SPACES)})")
    return MODEL_CLASSES[space](config)


def default_config(space: str, window_bins: int = 4096, target_bins: int = 1024) -> dict:
    """A sensible starting architecture for ``space`` (hilbert2d: the shape of the seed's final model)."""
    if space == hilbert2d.SPACE:
        return hilbert2d.seed_final_config(window_bins, target_bins)
    if space == dilated1d.SPACE:
        return dilated1d.make_config(window_bins=window_bins, target_bins=target_bins)
    if space == atacworks.SPACE:
        return atacworks.make_config(window_bins, target_bins)
    raise ValueError(f"unknown space {space!r} (known: {', '.join(SPACES)})")


def random_initial_config(space: str, rng: np.random.Generator, window_bins: int = 4096,
                          target_bins: int = 1024) -> dict:
    """A random starting point for the search (hilbert2d: the seed's one-Conv2D/one-Dense search)."""
    if space == hilbert2d.SPACE:
        return hilbert2d.random_initial_config(rng, window_bins, target_bins)
    if space == dilated1d.SPACE:
        return dilated1d.random_initial_config(rng, window_bins, target_bins)
    if space == atacworks.SPACE:  # a fixed, published architecture: the baseline has nothing to draw
        return atacworks.make_config(window_bins, target_bins)
    raise ValueError(f"space {space!r} has no random initial configs (searchable: hilbert2d, dilated1d)")
