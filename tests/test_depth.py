"""Depth normalisation (issue 19): a chromosome denoises the same alone and inside a genome-wide library.

The genome-sized library is built as the issue measured it: the chromosome plus
renamed copies of it, so its local density is the chromosome's own.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from atacdenoise.denoise import denoise
from atacdenoise.errors import InputError
from atacdenoise.tracks.depth import (BLOCK_BP, REFERENCE_DENSITY, block_counts, given_depth, measure_depth)

REPO = Path(__file__).resolve().parents[1]
COUNTS_MODEL = REPO / "registry" / "models" / "atac-denoiser-counts.onnx"
SHARED_DATA = REPO.parent / "shared" / "data"


def write_genome_of_copies(path: Path, chrom: str, positions: np.ndarray, copies: int) -> int:
    """``chrom`` plus ``copies`` renamed copies (``copy1``..) of its insertions, as an insertions BED; returns the total."""
    with gzip.open(path, "wt") as out:
        for name in [chrom] + [f"chrCopy{i}" for i in range(1, copies + 1)]:
            out.write("".join(f"{name}\t{p}\t{p + 1}\t.\t0\t+\n" for p in positions))
    return len(positions) * (copies + 1)


def synthetic_positions(length: int, seed: int = 0) -> np.ndarray:
    """Uniform background plus sites of 150 insertions (a test fixture, not real data)."""
    rng = np.random.default_rng(seed)
    sites = rng.integers(2_000, length - 2_000, 40)
    pos = np.concatenate([rng.integers(0, length, 3_000), (sites[:, None] + rng.integers(-80, 80, (40, 150))).ravel()])
    return np.sort(pos)


def denoised(prefix_outputs: dict, chrom: str, length: int) -> np.ndarray:
    with pyBigWig.open(prefix_outputs["denoised"]) as bw:
        return np.nan_to_num(np.array(bw.values(chrom, 0, length)))


def test_chromosome_alone_with_library_size_and_inside_a_genome_give_the_same_track(tmp_path):
    length, copies = 300_000, 30
    positions = synthetic_positions(length)
    genome_sizes = {"chrA": length, **{f"chrCopy{i}": length for i in range(1, copies + 1)}}
    alone_file, genome_file = tmp_path / "alone.bed.gz", tmp_path / "genome.bed.gz"
    write_genome_of_copies(alone_file, "chrA", positions, 0)
    total = write_genome_of_copies(genome_file, "chrA", positions, copies)

    inside = denoise(genome_file, COUNTS_MODEL, genome_sizes, tmp_path / "inside", progress=False)
    alone = denoise(alone_file, COUNTS_MODEL, {"chrA": length}, tmp_path / "alone", progress=False)
    alone_given = denoise(alone_file, COUNTS_MODEL, genome_sizes, tmp_path / "given", progress=False,
                          library_size=total)
    only_a = denoise(genome_file, COUNTS_MODEL, genome_sizes, tmp_path / "only", progress=False, chroms=["chrA"])
    reference = denoised(inside, "chrA", length)
    assert reference.max() > 0
    np.testing.assert_array_equal(denoised(only_a, "chrA", length), reference)
    assert denoised(only_a, "chrCopy1", length).max() == 0  # --chroms: the others are left empty
    np.testing.assert_allclose(denoised(alone, "chrA", length), reference, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(denoised(alone_given, "chrA", length), reference, rtol=1e-6, atol=1e-7)
    # A library size that is wrong by 100x must show: the same input no longer gives the same output.
    wrong = denoise(alone_file, COUNTS_MODEL, genome_sizes, tmp_path / "wrong", progress=False,
                    library_size=total * 100)
    assert np.abs(denoised(wrong, "chrA", length) - reference).max() > 0.1 * reference.max()


def test_provenance_states_the_library_depth_used(tmp_path):
    import json

    positions = synthetic_positions(200_000)
    path = tmp_path / "one.bed.gz"
    write_genome_of_copies(path, "chrA", positions, 0)
    out = denoise(path, COUNTS_MODEL, {"chrA": 200_000}, tmp_path / "p", progress=False)
    record = json.loads(Path(out["provenance"]).read_text())
    assert record["library"]["insertions"] == len(positions)
    assert record["library"]["sequence_bp"] == 200_000
    assert record["library"]["how"] == "measured"
    assert record["onnx_sha256"] and record["contract"]["input_normalisation"] == "density"


def test_mitochondria_and_pileups_are_left_out_of_the_depth():
    sizes = {"chr1": 1_000_000, "chr2": 500_000, "chrM": 16_569}
    rng = np.random.default_rng(1)
    chr1 = rng.integers(0, sizes["chr1"], 10_000)
    pileup = np.full(50_000, 250_050)  # one block 50x denser than the rest
    blocks = {"chr1": block_counts(np.concatenate([chr1, pileup]), sizes["chr1"]),
              "chr2": block_counts(rng.integers(0, sizes["chr2"], 5_000), sizes["chr2"]),
              "chrM": block_counts(rng.integers(0, sizes["chrM"], 80_000), sizes["chrM"])}
    depth = measure_depth(blocks.items(), sizes)
    assert depth.mitochondrial == 80_000 and depth.pileups == 50_000 + np.sum(chr1 // BLOCK_BP == 2)
    assert depth.pileup_blocks == ("chr1:200000-300000",)
    assert depth.sequence_bp == 1_400_000
    assert depth.density == pytest.approx((15_000 - np.sum(chr1 // BLOCK_BP == 2)) / 1_400_000)
    assert depth.scale == pytest.approx(REFERENCE_DENSITY / depth.density)


def test_a_chromosome_without_insertions_is_not_covered_but_a_given_size_spreads_over_the_genome():
    sizes = {"chr1": 1_000_000, "chr2": 3_000_000, "chrM": 16_569}
    blocks = {"chr1": block_counts(np.arange(0, 1_000_000, 100), sizes["chr1"])}
    assert measure_depth(blocks.items(), sizes).sequence_bp == 1_000_000
    assert given_depth(40_000, sizes).density == pytest.approx(40_000 / 4_000_000)
    with pytest.raises(InputError, match="positive"):
        given_depth(0, sizes)
    with pytest.raises(InputError, match="no insertions on nuclear"):
        measure_depth({"chrM": np.ones(1)}.items(), sizes)


def test_yeast_rdna_is_the_only_pileup_of_the_real_library():
    fragments = SHARED_DATA / "yeast" / "fragments.tsv.gz"
    if not fragments.exists():
        pytest.skip(f"real data not found at {fragments}")
    from atacdenoise.io.chromsizes import read_chrom_sizes
    from atacdenoise.io.reads import iter_insertions

    sizes = read_chrom_sizes(SHARED_DATA / "yeast" / "chrom.sizes")
    blocks = {chrom: block_counts(p, sizes[chrom]) for chrom, p in iter_insertions(fragments, sizes)}
    depth = measure_depth(blocks.items(), sizes)
    assert depth.pileup_blocks == ("chrXII:400000-500000",)  # the rDNA array (chrXII:450-470 kb)
    assert depth.mitochondrial > 0
    assert 40 < depth.density * 1000 < 60  # the data README: ~50 insertions per kb outside rDNA and chrM


def test_hsc_chromosome_denoises_the_same_alone_and_inside_a_larger_library(tmp_path):
    insertions = SHARED_DATA / "hsc" / "noisy_5M.tn5_insertions.bed.gz"
    if not insertions.exists():
        pytest.skip(f"real data not found at {insertions}")
    from atacdenoise.io.chromsizes import read_chrom_sizes
    from atacdenoise.io.reads import iter_insertions

    sizes = read_chrom_sizes(SHARED_DATA / "hsc" / "chrom.sizes")
    positions = dict(iter_insertions(insertions, sizes))["chr2"]
    length, copies = sizes["chr2"], 3
    genome_sizes = {"chr2": length, **{f"chrCopy{i}": length for i in range(1, copies + 1)}}
    alone_file, genome_file = tmp_path / "alone.bed.gz", tmp_path / "genome.bed.gz"
    write_genome_of_copies(alone_file, "chr2", positions, 0)
    write_genome_of_copies(genome_file, "chr2", positions, copies)
    inside = denoise(genome_file, COUNTS_MODEL, genome_sizes, tmp_path / "inside", progress=False)
    alone = denoise(alone_file, COUNTS_MODEL, {"chr2": length}, tmp_path / "alone", progress=False)
    np.testing.assert_allclose(denoised(alone, "chr2", length), denoised(inside, "chr2", length),
                               rtol=1e-6, atol=1e-7)
    # ... and scores inside the larger library what its card states for 5M (Pearson 0.969, AUPRC 0.828).
    from atacdenoise.evaluate.evaluate import evaluate

    hsc = SHARED_DATA / "hsc"
    scored = evaluate(inside["denoised"], hsc / "clean_80M.coverage.bw", truth_peaks=hsc / "clean_80M.peaks.bed",
                      regions=hsc / "clean_80M.labelled_regions.bed", peakprob=inside["peakprob"], chroms=["chr2"],
                      per_chrom=False)["overall"]
    assert scored["pearson"] == pytest.approx(0.969, abs=0.005) and scored["auprc"] == pytest.approx(0.828, abs=0.005)
