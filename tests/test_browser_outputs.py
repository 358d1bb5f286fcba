"""Outputs genome browsers take: peaks as bigBed, tabix-indexed insertions, bedGraph, an IGV session."""

from __future__ import annotations

import gzip
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyBigWig
import pysam
import pytest

from atacdenoise.errors import InputError
from atacdenoise.io.bedgraph import BedGraphWriter, bedgraph_path
from atacdenoise.io.bigbed import bigbed_path, write_narrowpeak_bigbed
from atacdenoise.io.bigwig import BigWigWriter, read_bigwig
from atacdenoise.io.igv import IgvTrack, write_igv_session
from atacdenoise.io.narrowpeak import Peaks, write_narrowpeak
from atacdenoise.io.reads import iter_insertions, write_insertions_bed, write_tabix_index

SIZES = {"chr1": 180_000, "chr2": 95_010}


def narrowpeak_rows(path) -> list[tuple[str, int, int, str]]:
    rows = []
    for line in Path(path).read_text().splitlines():
        chrom, start, end, rest = line.split("\t", 3)
        rows.append((chrom, int(start), int(end), rest))
    return rows


def bigbed_rows(path, chrom_sizes) -> list[tuple[str, int, int, str]]:
    with pyBigWig.open(str(path)) as bb:  # a chromosome without peaks is not in the header (as bedToBigBed does)
        assert bb.isBigBed() and bb.chroms().items() <= chrom_sizes.items()
        return [(chrom, start, end, rest) for chrom in chrom_sizes if chrom in bb.chroms()
                for start, end, rest in (bb.entries(chrom, 0, chrom_sizes[chrom]) or [])]


def bedgraph_values(path, chrom: str, length: int) -> np.ndarray:
    """Per-base values of one chromosome of a (gzipped) bedGraph, 0 where it has no line."""
    per_base = np.zeros(length, np.float32)
    with gzip.open(path, "rt") as fh:
        for line in fh:
            name, start, end, value = line.split("\t")
            if name == chrom:
                per_base[int(start):int(end)] = float(value)
    return per_base


def assert_bigbed_matches(narrowpeak, chrom_sizes) -> None:
    """The bigBed beside a narrowPeak holds its peaks, every column, with the bed6+4 header UCSC writes."""
    bb = bigbed_path(narrowpeak)
    assert bigbed_rows(bb, chrom_sizes) == narrowpeak_rows(narrowpeak)
    field_count, defined = struct.unpack_from("<HH", bb.read_bytes(), 32)
    assert (field_count, defined) == (10, 6)
    with pyBigWig.open(str(bb)) as handle:
        assert b"signalValue" in handle.SQL()


def test_narrowpeak_bigbed_holds_every_peak(tmp_path):
    rng = np.random.default_rng(3)
    peaks = []
    for chrom, length in SIZES.items():
        starts = np.sort(rng.choice(np.arange(0, length - 500, 500), 40, replace=False))
        peaks.append(Peaks(chrom, starts, starts + rng.integers(50, 400, 40), rng.uniform(1, 120, 40).astype(np.float32),
                           rng.integers(0, 50, 40)))
    path = tmp_path / "s.peaks.narrowPeak"
    write_narrowpeak(path, peaks)
    assert write_narrowpeak_bigbed(path, SIZES) == tmp_path / "s.peaks.bb"
    assert_bigbed_matches(path, SIZES)
    assert len(narrowpeak_rows(path)) == 80


def test_no_peaks_means_no_bigbed_and_bad_peaks_are_refused(tmp_path):
    empty = tmp_path / "empty.narrowPeak"
    empty.write_text("")
    bigbed_path(empty).write_bytes(b"an earlier run's")
    assert write_narrowpeak_bigbed(empty, SIZES) is None and not bigbed_path(empty).exists()
    outside = tmp_path / "outside.narrowPeak"
    outside.write_text("chr1\t10\t20\tp\t0\t.\t1\t-1\t-1\t-1\nchr3\t10\t20\tp\t0\t.\t1\t-1\t-1\t-1\n")
    with pytest.raises(InputError, match="line 2: chr3:10-20 is not within the chrom sizes"):
        write_narrowpeak_bigbed(outside, SIZES)
    first = tmp_path / "first.narrowPeak"
    first.write_text("chr1\t10\t180001\tp\t0\t.\t1\t-1\t-1\t-1\n")
    with pytest.raises(InputError, match="line 1: chr1:10-180001"):
        write_narrowpeak_bigbed(first, SIZES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.narrowPeak", "first.narrowPeak", "outside.narrowPeak"]


def test_insertions_are_bgzipped_and_tabix_indexed(tmp_path):
    rng = np.random.default_rng(1)
    positions = {chrom: np.sort(rng.integers(0, n, 3000)) for chrom, n in SIZES.items()}
    path = tmp_path / "s.insertions.bed.gz"
    assert write_insertions_bed(path, iter(positions.items())) == 6000
    assert path.read_bytes()[:4] == b"\x1f\x8b\x08\x04"  # gzip with the extra field BGZF blocks carry
    with pysam.TabixFile(str(path)) as tabix:  # finds s.insertions.bed.gz.tbi
        assert set(tabix.contigs) == set(SIZES)
        for chrom, pos in positions.items():
            lo, hi = 20_000, 30_000
            fetched = [int(row.split("\t")[1]) for row in tabix.fetch(chrom, lo, hi)]
            assert fetched == pos[(pos >= lo) & (pos < hi)].tolist()
    # Every reader of insertions reads the BGZF file as plain gzip.
    read = dict(iter_insertions(path, SIZES))
    assert all(np.array_equal(read[c], positions[c]) for c in SIZES)
    with gzip.open(path, "rt") as fh:
        assert sum(1 for _ in fh) == 6000


def test_unsorted_bed_gets_no_index_and_loses_a_stale_one(tmp_path, caplog):
    path = tmp_path / "u.bed.gz"
    with pysam.BGZFile(str(path), "wb") as out:
        out.write(b"chr1\t10\t11\t.\t0\t+\nchr1\t5\t6\t.\t0\t+\n")
    Path(f"{path}.tbi").write_bytes(b"stale")
    assert write_tabix_index(path) is None
    assert not Path(f"{path}.tbi").exists() and not Path(f"{path}.csi").exists()
    assert "not sorted by position" in caplog.text


def test_subsampled_insertions_are_indexed_too(tmp_path):
    from atacdenoise.tracks.subsample import subsample

    rng = np.random.default_rng(2)
    positions = {chrom: np.sort(rng.integers(0, n, 4000)) for chrom, n in SIZES.items()}
    deep = tmp_path / "deep.insertions.bed.gz"
    write_insertions_bed(deep, iter(positions.items()))
    (shallow,) = subsample(deep, str(tmp_path / "shallow.insertions.bed.gz"), [0.3], seed=1)
    with pysam.TabixFile(shallow) as tabix:
        rows = list(tabix.fetch("chr2"))
    assert 0.2 * 4000 < len(rows) < 0.4 * 4000


@pytest.mark.parametrize("chunk", [7, 64, 10_000])
def test_bedgraph_holds_the_bigwig_values_whatever_the_chunking(tmp_path, chunk):
    bin_size = 25
    rng = np.random.default_rng(4)
    tracks = {}
    for chrom, length in SIZES.items():
        n = -(-length // bin_size)
        values = np.where(rng.random(n) < 0.4, 0, rng.integers(1, 4, n) / 3).astype(np.float32)
        values[100:140] = 2.5  # a long run, crossing chunk ends
        values[-1] = 7.0       # the partial last bin of chr2
        values[5] = np.nan
        tracks[chrom] = values
    bigwig, bedgraph = tmp_path / f"t{chunk}.bw", bedgraph_path(tmp_path / f"t{chunk}.bw")
    assert bedgraph.name == f"t{chunk}.bedGraph.gz"
    with BigWigWriter(bigwig, SIZES, bin_size) as bw, BedGraphWriter(bedgraph, SIZES, bin_size) as bg:
        for chrom, values in tracks.items():
            for first in range(0, len(values), chunk):
                bw.add(chrom, first, values[first:first + chunk])
                bg.add(chrom, first, values[first:first + chunk])
    lines = [line.split("\t") for line in gzip.open(bedgraph, "rt").read().splitlines()]
    for chrom, length in SIZES.items():
        np.testing.assert_allclose(bedgraph_values(bedgraph, chrom, length), read_bigwig(bigwig, chrom), rtol=1e-6)
        rows = [r for r in lines if r[0] == chrom]
        starts, ends = [int(r[1]) for r in rows], [int(r[2]) for r in rows]
        assert all(e <= s for e, s in zip(ends, starts[1:])) and ends[-1] <= length
        assert not any(float(r[3]) == 0 for r in rows)
        # equal neighbours are one line, also across chunks
        assert [chrom, str(100 * bin_size), str(140 * bin_size), "2.5"] in lines
    assert ["chr2", str(95_000), str(95_010), "7"] in lines


def test_igv_session_points_to_every_track_relative_to_itself(tmp_path):
    folder = tmp_path / "results" / "denoise"
    folder.mkdir(parents=True)
    files = {name: folder / name for name in ("s.denoised.bw", "s.peakprob.bw", "s.peaks.bb")}
    for path in files.values():
        path.write_bytes(b"x")
    other = tmp_path / "results" / "bin" / "deep.coverage.bw"
    other.parent.mkdir()
    other.write_bytes(b"x")
    tracks = [IgvTrack(other, "deep", "0,0,0"), IgvTrack(files["s.denoised.bw"], "denoised", "0,114,178"),
              IgvTrack(files["s.peakprob.bw"], "peak probability", "230,159,0", (0.0, 1.0)),
              IgvTrack(files["s.peaks.bb"], "peaks", "213,94,0")]
    session = write_igv_session(folder / "s.igv.xml", tracks, genome="hg38")
    moved = tmp_path / "moved"
    (tmp_path / "results").rename(moved)
    root = assert_session_resolves(moved / "denoise" / "s.igv.xml")
    assert root.get("genome") == "hg38" and session.name == "s.igv.xml"
    resources = [r.get("path") for r in root.iter("Resource")]
    assert resources == ["../bin/deep.coverage.bw", "s.denoised.bw", "s.peakprob.bw", "s.peaks.bb"]
    by_name = {t.get("name"): t for t in root.iter("Track")}
    assert by_name["denoised"].get("autoScale") == "true"
    prob = by_name["peak probability"]
    assert prob.get("autoScale") == "false" and prob.find("DataRange").get("maximum") == "1.0"
    assert by_name["peaks"].get("clazz") == "org.broad.igv.track.FeatureTrack"


def assert_session_resolves(session: Path) -> ET.Element:
    """Parse an IGV session; every resource (and a FASTA genome) exists relative to the session's folder."""
    root = ET.parse(session).getroot()
    assert root.tag == "Session" and root.get("version") == "8"
    paths = [r.get("path") for r in root.iter("Resource")]
    assert paths and [t.get("id") for t in root.iter("Track")] == paths
    for path in paths:
        assert not Path(path).is_absolute() and (session.parent / path).is_file(), path
    genome = root.get("genome")
    if genome and genome.endswith((".fa", ".fasta", ".fa.gz")):
        assert (session.parent / genome).is_file()
    return root


@pytest.fixture(scope="module")
def denoised(tmp_path_factory):
    """``atacdenoise denoise --bedgraph`` with the centre model of test_denoise (its output is its input)."""
    from test_denoise import SIZES as DENOISE_SIZES, TARGET, WINDOW, centre_model, write_insertions

    from atacdenoise.cli import main
    from atacdenoise.denoise.contract import ModelContract

    root = tmp_path_factory.mktemp("browser")
    model = centre_model(root / "centre.onnx", ModelContract(space="test-centre", window_bins=WINDOW,
                                                             target_bins=TARGET, genome="hg19"))
    positions = write_insertions(root / "plain.bed.gz", DENOISE_SIZES, 2000)
    insertions = root / "data" / "s.insertions.bed.gz"
    write_insertions_bed(insertions, iter(positions.items()))  # bgzipped and indexed, as `insertions` writes it
    sizes = root / "chrom.sizes"
    sizes.write_text("".join(f"{c}\t{n}\n" for c, n in DENOISE_SIZES.items()))
    prefix = root / "out" / "s"
    assert main(["denoise", "--input", str(insertions), "--model", str(model), "--chrom-sizes", str(sizes),
                 "--out-prefix", str(prefix), "--genome", "hg19", "--bedgraph", "--quiet"]) == 0
    return {"root": root, "prefix": prefix, "sizes": DENOISE_SIZES, "model": model, "insertions": insertions,
            "chrom_sizes": sizes}


def test_denoise_writes_peaks_bigbed_and_bedgraphs(denoised):
    prefix, sizes = denoised["prefix"], denoised["sizes"]
    assert narrowpeak_rows(f"{prefix}.peaks.narrowPeak"), "the centre model calls peaks at the dense sites"
    assert_bigbed_matches(Path(f"{prefix}.peaks.narrowPeak"), sizes)
    for track in ("denoised", "peakprob"):
        for chrom, length in sizes.items():
            np.testing.assert_allclose(bedgraph_values(f"{prefix}.{track}.bedGraph.gz", chrom, length),
                                       read_bigwig(f"{prefix}.{track}.bw", chrom), rtol=1e-6)


def test_denoise_session_opens_input_and_outputs(denoised):
    root = assert_session_resolves(Path(f"{denoised['prefix']}.igv.xml"))
    names = [t.get("name") for t in root.iter("Track")]
    assert names == ["input insertions", "denoised", "peak probability", "denoised peaks"]
    assert [r.get("path") for r in root.iter("Resource")][0] == "../data/s.insertions.bed.gz"
    assert root.find("Panel/Track[@name='input insertions']").get("visibilityWindow") == "100000"
    assert root.get("genome") == "hg19" and root.find("Panel/Track[@name='denoised peaks']").get("id") == "s.peaks.bb"


def test_a_staged_input_is_left_out_of_the_session(denoised):
    """Nextflow stages inputs as symlinks in a work folder that is not published: the session skips them."""
    from atacdenoise.denoise import denoise

    work = denoised["root"] / "work"
    work.mkdir()
    (work / "s.insertions.bed.gz").symlink_to(denoised["insertions"])
    out = denoise(work / "s.insertions.bed.gz", denoised["model"], denoised["sizes"], work / "s", progress=False)
    root = assert_session_resolves(Path(out["igv_session"]))
    assert [r.get("path") for r in root.iter("Resource")] == ["s.denoised.bw", "s.peakprob.bw", "s.peaks.bb"]
    assert root.get("genome") is None and not Path(f"{work}/s.denoised.bedGraph.gz").exists()


def test_bin_writes_a_bedgraph_beside_its_bigwig(denoised, tmp_path):
    from atacdenoise.cli import main

    prefix = tmp_path / "cov"
    assert main(["bin", "--input", str(denoised["insertions"]), "--chrom-sizes", str(denoised["chrom_sizes"]),
                 "--out-prefix", str(prefix), "--bedgraph", "--quiet"]) == 0
    length = denoised["sizes"]["chr2"]
    np.testing.assert_allclose(bedgraph_values(f"{prefix}.bedGraph.gz", "chr2", length),
                               read_bigwig(f"{prefix}.bw", "chr2"), rtol=1e-6)
