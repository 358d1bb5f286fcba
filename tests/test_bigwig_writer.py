"""The bigWig writer (io/bigwig_writer.py), read back by two independent readers: pyBigWig (libBigWig, C) and
pybigtools (bigtools, Rust): values, zoom records, total summary, the chromosome tree and the R-tree index."""

import numpy as np
import pyBigWig
import pybigtools
import pytest

from atacdenoise.io.bigwig_writer import ITEMS_PER_BLOCK, BigWigWriter

BIN = 25
SIZES = {"chr1": 7_000_013, "chr2": 500_000, "chrUn": 4_000, "chrM": 16_571, "chrY": 30}


def _tracks(seed: int = 0) -> dict[str, np.ndarray]:
    """Bins with runs of zeros (short and longer than a block), NaN, a negative value, and chrUn all zero."""
    rng = np.random.default_rng(seed)
    tracks = {}
    for chrom, length in SIZES.items():
        n = -(-length // BIN)
        values = rng.gamma(1.0, 3.0, n).astype(np.float32)
        values[rng.random(n) < 0.3] = 0
        values[n // 3:n // 3 + 3 * ITEMS_PER_BLOCK] = 0
        tracks[chrom] = values
    tracks["chr1"][[5, 17, -1]] = [np.nan, -2.5, 4.0]
    tracks["chrUn"][:] = 0
    return tracks


def _write(path, tracks, chunk_bins, sizes=SIZES):
    with BigWigWriter(path, sizes, BIN) as writer:
        for chrom, values in tracks.items():
            for lo in range(0, len(values), chunk_bins):
                writer.add(chrom, lo, values[lo:lo + chunk_bins])
    return path


def _per_base(values: np.ndarray, length: int) -> np.ndarray:
    return np.nan_to_num(np.repeat(values, BIN)[:length])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    tracks = _tracks()
    return _write(tmp_path_factory.mktemp("bw") / "t.bw", tracks, 100_003), tracks


def test_both_readers_see_every_base_as_written(written):
    path, tracks = written
    libbigwig, bigtools = pyBigWig.open(str(path)), pybigtools.open(str(path))
    assert libbigwig.chroms() == SIZES and bigtools.chroms() == SIZES
    for chrom, length in SIZES.items():
        expected = _per_base(tracks[chrom], length)
        assert np.array_equal(np.nan_to_num(libbigwig.values(chrom, 0, length, numpy=True)), expected), chrom
        assert np.array_equal(bigtools.values(chrom, 0, length, fillna=0), expected), chrom
    # the last, partial bin of chr1 is clipped to the chromosome end; zeros are not stored
    assert libbigwig.intervals("chr1", 7_000_000, 7_000_013)[-1][:2] == (7_000_000, 7_000_013)
    assert libbigwig.intervals("chrUn") is None or libbigwig.intervals("chrUn") == ()


@pytest.mark.parametrize("chunk_bins, add_bins", [(7_777, None), (10_000_000, 5_001)])
def test_zoom_records_hold_each_reduction_bins_sums_whatever_the_chunking(written, tmp_path, monkeypatch, chunk_bins,
                                                                         add_bins):
    """Chunks that cut records and blocks elsewhere; whole chromosomes at once, which the writer slices."""
    import atacdenoise.io.bigwig_writer as bigwig_writer

    if add_bins:
        monkeypatch.setattr(bigwig_writer, "ADD_BINS", add_bins)
    path, tracks = written
    other = _write(tmp_path / "other.bw", tracks, chunk_bins)
    assert np.array_equal(pybigtools.open(str(other)).values("chr1", 0, SIZES["chr1"], fillna=0),
                          _per_base(tracks["chr1"], SIZES["chr1"]))
    first, second = pybigtools.open(str(path)), pybigtools.open(str(other))
    assert first.zooms() == second.zooms() == [400 * 4 ** i for i in range(8)]  # 400 bp .. 6.6 Mb: up to chr1
    for reduction in (400, 25_600, 1_638_400):
        for chrom in ("chr1", "chrY"):
            records = list(first.zoom_records(reduction, chrom))
            assert records == list(second.zoom_records(reduction, chrom))
            assert records == _expected_zoom_records(tracks[chrom], SIZES[chrom], reduction)


def _expected_zoom_records(values: np.ndarray, length: int, reduction: int) -> list:
    per_base = _per_base(values, length).astype(np.float64)
    stored = np.repeat(np.nan_to_num(values) != 0, BIN)[:length]
    records = []
    for start in range(0, length, reduction):
        window, kept = per_base[start:start + reduction], stored[start:start + reduction]
        if kept.any():
            x = window[kept]
            records.append((start, min(start + reduction, length), {
                "total_items": 0, "bases_covered": int(kept.sum()), "min_val": float(np.float32(x.min())),
                "max_val": float(np.float32(x.max())), "sum": float(np.float32(x.sum())),
                "sum_squares": float(np.float32((x * x).sum()))}))
    # float32 sums of float64 partial sums: allow the last bit
    return [(s, e, {**d, "sum": pytest.approx(d["sum"], rel=1e-6),
                    "sum_squares": pytest.approx(d["sum_squares"], rel=1e-6)}) for s, e, d in records]


def test_libbigwig_summaries_from_the_zoom_levels_match_the_exact_ones(written):
    path, tracks = written
    bw = pyBigWig.open(str(path))
    for kind in ("mean", "min", "max", "coverage"):
        from_zooms = bw.stats("chr1", 0, 6_553_600, type=kind, nBins=16)  # 409,600 bp bins: one zoom level's
        exact = bw.stats("chr1", 0, 6_553_600, type=kind, nBins=16, exact=True)
        assert np.allclose(from_zooms, exact, rtol=1e-5), kind
    values = np.concatenate([np.nan_to_num(v) for v in tracks.values()]).astype(np.float64)
    bases = np.concatenate([np.minimum(BIN, length - BIN * np.arange(-(-length // BIN)))
                            for length in SIZES.values()])
    stored = values != 0
    summary = pybigtools.open(str(path)).info()["summary"]  # pyBigWig's header() rounds min and max to integers
    assert summary["basesCovered"] == bases[stored].sum()
    assert (summary["min"], summary["max"]) == (values[stored].min(), values[stored].max())
    assert summary["sum"] == pytest.approx((values * bases).sum(), rel=1e-12)


def test_a_genome_of_many_contigs_gets_a_two_level_chromosome_tree(tmp_path):
    sizes = {f"scaffold_{i}": 1_000 + i for i in range(40_000)}  # more than one B+ tree node holds (32,767)
    path = _write(tmp_path / "many.bw", {"scaffold_5": np.full(41, 2, np.float32),
                                          "scaffold_39999": np.arange(1640, dtype=np.float32)}, 1000, sizes)
    for bw in (pyBigWig.open(str(path)), pybigtools.open(str(path))):
        assert bw.chroms() == sizes
    assert pyBigWig.open(str(path)).values("scaffold_39999", 40_975, 40_999) == [1639.0] * 24
    assert list(pybigtools.open(str(path)).values("scaffold_5", 995, 1005, fillna=0)) == [2.0] * 10


def test_an_all_zero_track_is_a_valid_empty_bigwig(tmp_path):
    path = _write(tmp_path / "empty.bw", {"chr1": np.zeros(4, np.float32)}, 10, {"chr1": 100})
    assert pyBigWig.open(str(path)).header()["nBasesCovered"] == 0
    assert list(pybigtools.open(str(path)).values("chr1", 0, 100, fillna=0)) == [0.0] * 100


def test_bins_out_of_order_fail_and_leave_no_file(tmp_path):
    out = tmp_path / "bad.bw"
    with pytest.raises(ValueError, match="overlap written ones"):
        with BigWigWriter(out, {"chr1": 1000}, BIN) as writer:
            writer.add("chr1", 10, np.ones(5, np.float32))
            writer.add("chr1", 12, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="out of order"):
        with BigWigWriter(out, {"chr1": 1000, "chr2": 1000}, BIN) as writer:
            writer.add("chr2", 0, np.ones(5, np.float32))
            writer.add("chr1", 0, np.ones(5, np.float32))
    assert list(tmp_path.iterdir()) == []
