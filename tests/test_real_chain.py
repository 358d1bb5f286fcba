"""The foundation chain on both real BAMs: BAM -> insertions -> subsample -> MACS3 -> bin.

Each step runs through the CLI, exactly as the pipeline's bin/ wrappers call it.
"""

from __future__ import annotations

import json

import numpy as np
import pysam
import pytest

from atacdenoise.cli import main
from atacdenoise.io.bigwig import read_bigwig
from atacdenoise.io.narrowpeak import read_peaks
from atacdenoise.io.reads import iter_insertions
from atacdenoise.tracks.store import open_store

BAMS = {
    "gm12878": ("bam/GM12878_chr1_subset.hg19.bam", "chr1"),
    "encode": ("bam/ENCSR356KRQ_rep1.subsampled400.nodup.hg38.bam", "chr19"),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(BAMS))
def test_bam_to_binned_tracks(name, shared_data, tmp_path, capsys):
    rel, chrom = BAMS[name]
    bam = shared_data / rel

    assert main(["insertions", "--input", str(bam), "--output", str(tmp_path / "ins.bed.gz"), "--stats"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["kept"] > 1000
    assert counts["per_chrom"][chrom] == counts["kept"]  # both BAMs hold reads of one chromosome (and chrM)
    if name == "encode":
        assert counts["excluded_chrom"] == 40_830  # every chrM read is dropped by default

    sub = tmp_path / "sub_{fraction}.bam"
    assert main(["subsample", "--input", str(bam), "--fraction", "0.1,0.5", "--seed", "3", "--output", str(sub)]) == 0
    with pysam.AlignmentFile(bam) as full:
        n_full = full.mapped + full.unmapped
    for fraction in (0.1, 0.5):
        with pysam.AlignmentFile(tmp_path / f"sub_{fraction:g}.bam") as fh:
            n = sum(1 for _ in fh.fetch(until_eof=True))
        assert abs(n / n_full - fraction) < 0.05

    assert main(["peaks", "--input", str(bam), "--out-prefix", str(tmp_path / "deep")]) == 0
    assert main(["peaks", "--input", str(tmp_path / "sub_0.1.bam"), "--out-prefix", str(tmp_path / "shallow"),
                 "--low-threshold"]) == 0
    deep = read_peaks(tmp_path / "deep.narrowPeak")
    assert chrom in deep and len(deep[chrom].starts) > 0
    assert read_peaks(tmp_path / "shallow.narrowPeak") is not None

    assert main(["bin", "--input", str(bam), "--out-prefix", str(tmp_path / "cov"), "--stat", "sum",
                 "--extend", "0", "--bin-size", "25"]) == 0
    store = open_store(tmp_path / "cov.tracks")
    assert "chrM" not in store.chroms
    insertions = dict(iter_insertions(bam, store.chrom_sizes))
    # with no extension and a sum per bin, the track counts insertions exactly
    assert store.array(chrom).sum() == pytest.approx(len(insertions[chrom]))
    per_base = read_bigwig(tmp_path / "cov.bw", chrom)
    assert per_base.sum() == pytest.approx(25 * len(insertions[chrom]), rel=1e-6)



@pytest.mark.realdata
def test_peak_signal_track_is_max_of_overlapping_peaks(shared_data, tmp_path):
    sizes = tmp_path / "chrom.sizes"
    sizes.write_text((shared_data / "hsc/chrom.sizes").read_text())
    peaks_file = shared_data / "hsc/noisy_5M.macs2_peaks.bed"
    assert main(["bin", "--input", str(peaks_file), "--chrom-sizes", str(sizes), "--representation", "peak-signal",
                 "--out-prefix", str(tmp_path / "sig")]) == 0
    track = open_store(tmp_path / "sig.tracks").array("chr1")
    peaks = read_peaks(peaks_file)["chr1"]
    inside = np.zeros(track.size, bool)
    for start, end in zip(peaks.starts, peaks.ends):
        inside[start // 25:(end - 1) // 25 + 1] = True
    assert np.all(track[~inside] == 0)
    assert np.all(track[inside] > 0)
