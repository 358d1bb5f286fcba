"""Peak calling with the real MACS3, ATAC settings.

``macs3 callpeak --nomodel --shift -100 --extsize 200 --keep-dup all`` on Tn5
insertions (BED) or, for paired-end BAM, ``-f BAMPE``. ``-g`` comes from the
chrom sizes unless given. The seed called peaks with a low threshold
(``low_threshold=True`` -> ``-p 0.01``).
"""

from __future__ import annotations

import os


def call_peaks(
    input_path: str | os.PathLike,
    output_prefix: str | os.PathLike,
    chrom_sizes: dict[str, int],
    genome_size: int | str | None = None,
    fmt: str = "auto",
    low_threshold: bool = False,
    qvalue: float = 0.05,
    read_filter=None,
) -> dict[str, str]:
    """Write ``{prefix}.narrowPeak`` and ``{prefix}.signal.bw`` (MACS3 pileup); return the paths."""
    raise NotImplementedError
