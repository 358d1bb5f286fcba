"""The seed's low-quality twin: keep each read (pair) or insertion with probability p.

BAM: a read is kept when a hash of its name and the seed falls below the
fraction, exactly as ``samtools view --subsample F --subsample-seed S`` does, so
mates stay together and results match samtools. Insertions and fragments: a
seeded Bernoulli per record. One uniform number per record serves every
fraction, so the 0.1 subsample is contained in the 0.2 subsample.
"""

from __future__ import annotations

import os

import numpy as np


def parse_fractions(text: str) -> list[float]:
    """``"0.1,0.2"`` -> ``[0.1, 0.2]``; each must lie in (0, 1] (InputError otherwise)."""
    raise NotImplementedError


def samtools_keep_fraction(qname: str, seed: int) -> float:
    """The number in [0, 1) samtools compares with the fraction for this read name."""
    raise NotImplementedError


def subsample(
    input_path: str | os.PathLike,
    output_template: str,
    fractions: list[float],
    seed: int = 0,
    fmt: str = "auto",
) -> list[str]:
    """Write one subsample per fraction in a single pass; return the output paths.

    ``output_template`` contains ``{fraction}`` when several fractions are given.
    BAM outputs are indexed. Outputs are written atomically.
    """
    raise NotImplementedError


def thin_positions(positions: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Keep each insertion with probability ``fraction`` (used to make noisy training depths)."""
    raise NotImplementedError
