"""The bin grid every track shares: a chromosome of ``length`` bases makes ``ceil(length / bin_size)`` bins.

Its own module, below ``binning`` (which computes bins) and ``store`` (which
saves them), so the two can use each other's work without an import circle.
"""

from __future__ import annotations


def n_bins(chrom_length: int, bin_size: int) -> int:
    """Bins of a ``chrom_length`` bp chromosome; the last one may be partial."""
    return -(-chrom_length // bin_size)
