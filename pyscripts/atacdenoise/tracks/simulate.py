"""A small but realistic ATAC-seq simulator (seconds, not minutes).

Makes a random genome, accessible regions of varying strength, and paired-end
fragments: nucleosome-free (< 150 bp) inside peaks, mono- and di-nucleosome
lengths around them, plus uniform background. Writes FASTQ pairs, a sorted and
indexed BAM with the true alignments, and the truth tracks.
"""

from __future__ import annotations

import os


def simulate(
    out_dir: str | os.PathLike,
    n_chroms: int = 2,
    chrom_length: int = 2_000_000,
    n_fragments: int = 200_000,
    n_peaks_per_mb: int = 40,
    frip: float = 0.4,
    read_length: int = 50,
    seed: int = 0,
    prefix: str = "sim",
) -> dict[str, str]:
    """Write ``genome.fa`` (+ .fai), ``chrom.sizes``, ``{prefix}_R1.fastq.gz``,
    ``{prefix}_R2.fastq.gz``, ``{prefix}.bam`` (+ .bai), ``truth_peaks.bed`` and
    ``truth_accessibility.bw`` (the expected insertion rate per base); return their paths.
    """
    raise NotImplementedError
