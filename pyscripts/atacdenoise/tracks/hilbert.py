"""Exact, vectorised Hilbert curve between 4**k positions and a 2**k x 2**k grid.

The seed maps each 4096-bin window onto 64 x 64 (order 6) so that bins close on
the genome stay close in the image.
"""

from __future__ import annotations

import numpy as np


def index_to_xy(d: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Hilbert index ``d`` in [0, 4**order) -> grid coordinates (x, y)."""
    raise NotImplementedError


def xy_to_index(x: np.ndarray, y: np.ndarray, order: int) -> np.ndarray:
    """Inverse of :func:`index_to_xy`."""
    raise NotImplementedError


def order_for_length(length: int) -> int:
    """``4096`` -> 6; InputError-free ValueError when length is not a power of 4."""
    raise NotImplementedError


def to_grid(values: np.ndarray) -> np.ndarray:
    """``(..., 4**k)`` -> ``(..., 2**k, 2**k)`` along the Hilbert curve (works on numpy arrays)."""
    raise NotImplementedError


def from_grid(grid: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_grid`."""
    raise NotImplementedError


def grid_permutation(length: int) -> np.ndarray:
    """Flat indices: ``grid.reshape(..., L)[..., perm] == values`` ; cached, used by models too."""
    raise NotImplementedError
