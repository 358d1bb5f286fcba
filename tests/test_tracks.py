"""Subsampling, binning, the array store and windows: checked against brute force and real data."""

import gzip
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from atacdenoise.errors import InputError
from atacdenoise.io.narrowpeak import Peaks
from atacdenoise.tracks.bin_grid import n_bins
from atacdenoise.tracks.binning import bin_track, coverage_bins, peak_signal_bins
from atacdenoise.tracks.store import StoreWriter, open_store
from atacdenoise.tracks.subsample import (
    parse_fractions,
    samtools_keep_fraction,
    subsample,
    thin_positions,
)
from atacdenoise.tracks.windows import (
    WindowSpec,
    extract,
    make_windows,
    sample_starts,
    split_chromosomes,
    tile_starts,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HSC = DATA / "hsc"
GM12878_BAM = DATA / "bam" / "GM12878_chr1_subset.hg19.bam"
INSERTIONS = HSC / "noisy_5M.tn5_insertions.bed.gz"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def hsc_chr1_positions() -> np.ndarray:
    with gzip.open(need(INSERTIONS), "rt") as fh:
        return np.array([int(line.split("\t")[1]) for line in fh if line.startswith("chr1\t")])


def bam_names(path) -> list[str]:
    import pysam

    with pysam.AlignmentFile(str(path)) as bam:
        return [f"{r.query_name}\t{r.flag}\t{r.reference_start}" for r in bam.fetch(until_eof=True)]


# ---------------------------------------------------------------- subsample

@pytest.mark.parametrize("text", ["0", "1.5", "abc", "0.1,-0.2", "nan", ""])
def test_parse_fractions_rejects_bad_values(text):
    with pytest.raises(InputError) as err:
        parse_fractions(text)
    assert repr(text.split(",")[-1].strip())[1:-1] in str(err.value)


def test_parse_fractions_accepts_valid():
    assert parse_fractions("0.1, 0.5,1") == [0.1, 0.5, 1.0]


def test_samtools_keep_fraction_is_a_deterministic_uniform():
    values = np.array([samtools_keep_fraction(f"read{i}:{i * 7919}", 7) for i in range(5000)])
    assert np.all((values >= 0) & (values < 1))
    assert abs(values.mean() - 0.5) < 0.02
    assert samtools_keep_fraction("read1", 7) == samtools_keep_fraction("read1", 7)
    assert samtools_keep_fraction("read1", 7) != samtools_keep_fraction("read1", 8)


@pytest.mark.parametrize("seed", [7, 0])
def test_bam_subsample_equals_samtools(tmp_path, seed):
    need(GM12878_BAM)
    expected = subprocess.run(
        ["samtools", "view", "--subsample", "0.1", "--subsample-seed", str(seed), str(GM12878_BAM)],
        check=True, capture_output=True, text=True).stdout.splitlines()
    expected = [f"{f[0]}\t{f[1]}\t{int(f[3]) - 1}" for f in (line.split("\t") for line in expected)]
    [out] = subsample(GM12878_BAM, str(tmp_path / "sub.bam"), [0.1], seed=seed, fmt="bam")
    assert bam_names(out) == expected
    assert Path(out + ".bai").exists()


def test_bam_subsample_pairs_nesting_and_header(tmp_path):
    import pysam

    need(GM12878_BAM)
    outs = subsample(GM12878_BAM, str(tmp_path / "sub_{fraction}.bam"), [0.1, 0.5], seed=3, fmt="bam")
    assert [Path(o).name for o in outs] == ["sub_0.1.bam", "sub_0.5.bam"]
    small, large = (bam_names(o) for o in outs)
    total = len(bam_names(GM12878_BAM))
    assert set(small) <= set(large)                          # nested
    assert abs(len(small) / total - 0.1) < 0.02 and abs(len(large) / total - 0.5) < 0.03
    names = [line.split("\t")[0] for line in small]
    mates = {n: names.count(n) for n in set(names[:2000])}
    full = [line.split("\t")[0] for line in bam_names(GM12878_BAM)]
    full_counts = {n: 0 for n in mates}
    for n in full:
        if n in full_counts:
            full_counts[n] += 1
    assert mates == full_counts                              # both mates or neither
    with pysam.AlignmentFile(outs[0]) as bam:
        assert any(pg["ID"].startswith("atacdenoise") for pg in bam.header.to_dict()["PG"])
        assert bam.mapped == len(small)                      # the index is valid
    again = subsample(GM12878_BAM, str(tmp_path / "again_{fraction}.bam"), [0.1], seed=3, fmt="bam")
    assert bam_names(again[0]) == small                     # deterministic


def test_insertions_subsample(tmp_path):
    need(INSERTIONS)
    outs = subsample(INSERTIONS, str(tmp_path / "ins_{fraction}.bed.gz"), [0.1, 0.3], seed=5, fmt="insertions")
    chr1 = [[line for line in gzip.open(o, "rt") if line.startswith("chr1\t")] for o in outs]
    assert abs(len(chr1[0]) - 0.1 * 13_388) < 4 * np.sqrt(13_388 * 0.1 * 0.9)
    assert abs(len(chr1[1]) - 0.3 * 13_388) < 4 * np.sqrt(13_388 * 0.3 * 0.7)
    assert set(chr1[0]) <= set(chr1[1])
    plain = subsample(INSERTIONS, str(tmp_path / "one.bed"), [0.1], seed=5, fmt="insertions")[0]
    assert Path(plain).read_text() == gzip.open(outs[0], "rt").read()   # same draw, plain text out


def test_text_subsample_does_not_depend_on_chunking(tmp_path, monkeypatch):
    import atacdenoise.tracks.subsample as sub

    lines = [f"chr{c}\t{p}\t{p + 1}\tN\t1000\t+\n" for c in (1, 2) for p in range(3000)]
    bed = tmp_path / "in.bed"
    bed.write_text("track name=x\n" + "".join(lines))
    first = Path(subsample(bed, str(tmp_path / "a.bed"), [0.4], seed=1, fmt="insertions")[0]).read_text()
    monkeypatch.setattr(sub, "_BATCH", 777)
    second = Path(subsample(bed, str(tmp_path / "b.bed"), [0.4], seed=1, fmt="insertions")[0]).read_text()
    assert first == second and first.startswith("track")
    other = Path(subsample(bed, str(tmp_path / "c.bed"), [0.4], seed=2, fmt="insertions")[0]).read_text()
    assert other != first


def test_subsample_needs_fraction_placeholder(tmp_path):
    bed = tmp_path / "in.bed"
    bed.write_text("chr1\t5\t6\tN\t1000\t+\n")
    with pytest.raises(InputError, match="fraction"):
        subsample(bed, str(tmp_path / "out.bed"), [0.1, 0.2], fmt="insertions")
    with pytest.raises(InputError):
        subsample(bed, str(tmp_path / "out_{fraction}.bed"), [0.0], fmt="insertions")
    assert not list(tmp_path.glob("out*"))


def test_thin_positions():
    rng = np.random.default_rng(0)
    positions = np.arange(100_000)
    kept = thin_positions(positions, 0.2, rng)
    assert abs(len(kept) / len(positions) - 0.2) < 0.01
    assert np.all(np.diff(kept) > 0)
    assert len(thin_positions(positions, 1.0, rng)) == len(positions)
    with pytest.raises(InputError):
        thin_positions(positions, 0, rng)


# ---------------------------------------------------------------- binning

def brute_force_coverage(positions, length, bin_size, extend, stat):
    per_base = np.zeros(length)
    for p in positions:
        per_base[max(p - extend, 0) : max(min(p + extend + 1, length), 0)] += 1
    bins = [per_base[i : i + bin_size] for i in range(0, length, bin_size)]
    reduce = {"sum": np.sum, "max": np.max, "mean": np.mean}[stat]
    return np.array([reduce(b) for b in bins])


@pytest.mark.parametrize("bin_size", [1, 7, 25])
@pytest.mark.parametrize("stat", ["mean", "max", "sum"])
def test_coverage_bins_equals_brute_force(bin_size, stat):
    rng = np.random.default_rng(bin_size)
    length = 5003
    positions = np.concatenate([rng.integers(0, length, 300), [0, 1, 3, length - 1, length - 2, length - 1]])
    expected = brute_force_coverage(positions, length, bin_size, 10, stat)
    for chunk in (50, 333, 10_000):  # several chunks, chunk edges inside intervals, and one chunk
        got = coverage_bins(positions, length, bin_size, extend=10, stat=stat, chunk_bases=chunk)
        assert got.dtype == np.float32 and len(got) == n_bins(length, bin_size)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    scaled = coverage_bins(positions, length, bin_size, extend=10, stat=stat, scale=2.5)
    np.testing.assert_allclose(scaled, 2.5 * expected, rtol=1e-6)


@pytest.mark.parametrize("stat", ["mean", "sum"])
def test_coverage_bins_from_intervals_bit_for_bit(stat):
    """Mean and sum come from the coverage integral at bin edges, never a per-base array: the very same
    float32 values as summarising the per-base coverage, whatever the slice of bins, chunk, extension or scale."""
    from atacdenoise.tracks.binning import summarise_bins

    rng = np.random.default_rng(7)
    for _ in range(200):
        length, bin_size, extend = int(rng.integers(1, 4000)), int(rng.integers(1, 40)), int(rng.integers(0, 150))
        positions = np.sort(rng.integers(0, length, int(rng.integers(0, 50))))
        per_base = np.zeros(length, np.int64)
        for p in positions:
            per_base[max(p - extend, 0):p + extend + 1] += 1
        total = n_bins(length, bin_size)
        lo = int(rng.integers(0, total))
        hi = int(rng.integers(lo, total + 1))
        expected = (summarise_bins(per_base, bin_size, stat) * 0.37)[lo:hi].astype(np.float32)
        got = coverage_bins(positions, length, bin_size, extend, stat, scale=0.37,
                            chunk_bases=int(rng.integers(1, 3000)), bins=(lo, hi), presorted=True)
        np.testing.assert_array_equal(got, expected)


def test_coverage_bins_empty_and_bad_stat():
    assert not coverage_bins(np.array([], dtype=np.int64), 100, 25).any()
    with pytest.raises(InputError):
        coverage_bins(np.array([5]), 100, 25, stat="median")


def test_coverage_matches_real_bigwig_per_base():
    """Pins the +-100 convention: each insertion covers [p - 100, p + 100], 201 bases."""
    import pyBigWig

    positions = hsc_chr1_positions()
    assert len(positions) == 13_388
    with pyBigWig.open(str(need(HSC / "noisy_5M.coverage.bw"))) as bw:
        expected = np.nan_to_num(np.array(bw.values("chr1", 0, 10_000_000), dtype=np.float32))
    got = coverage_bins(positions, 10_000_000, bin_size=1, extend=100, stat="sum", chunk_bases=3_000_000)
    np.testing.assert_array_equal(got, expected)


def brute_force_peaks(starts, ends, signal, length, bin_size):
    out = np.zeros(n_bins(length, bin_size))
    for s, e, v in zip(starts, ends, signal):
        for base in range(max(s, 0), min(e, length)):
            out[base // bin_size] = max(out[base // bin_size], v)
    return out


@pytest.mark.parametrize("bin_size", [1, 10, 25])
def test_peak_signal_bins_equals_brute_force(bin_size):
    rng = np.random.default_rng(1)
    length = 2000
    starts = np.sort(rng.integers(-20, length, 40))
    ends = starts + rng.integers(1, 150, 40)
    signal = rng.uniform(1, 50, 40).astype(np.float32)
    peaks = Peaks("chr1", starts, ends, signal)
    got = peak_signal_bins(peaks, length, bin_size)
    np.testing.assert_allclose(got, brute_force_peaks(starts, ends, signal, length, bin_size), rtol=1e-6)
    assert not peak_signal_bins(None, length, bin_size).any()


def test_bin_track_from_insertions_end_to_end(tmp_path):
    from atacdenoise.io.bigwig import read_bigwig
    from atacdenoise.io.chromsizes import read_chrom_sizes

    sizes = read_chrom_sizes(need(HSC / "chrom.sizes"))
    out = bin_track(INSERTIONS, sizes, tmp_path / "noisy", bin_size=25, stat="sum")
    store = open_store(out["store"])
    assert store.chroms == ["chr1", "chr2"] and store.bin_size == 25
    expected = coverage_bins(hsc_chr1_positions(), sizes["chr1"], 25, 100, "sum")
    np.testing.assert_array_equal(store.array("chr1"), expected)
    assert store.array("chr2").sum() == 17_232 * 201 * 1.0
    per_base = read_bigwig(out["bigwig"], "chr1", 0, 100_000)
    np.testing.assert_allclose(per_base[::25], expected[:4000], rtol=1e-6)

    normalised = open_store(bin_track(INSERTIONS, sizes, tmp_path / "cpm", stat="sum", normalize=True)["store"])
    total = 13_388 + 17_232
    np.testing.assert_allclose(normalised.array("chr1"), expected * 1e6 / total, rtol=1e-5)
    assert normalised.meta["params"]["total_insertions"] == total


def test_bin_track_resamples_bigwig_and_reads_peaks(tmp_path):
    from atacdenoise.io.chromsizes import read_chrom_sizes

    sizes = read_chrom_sizes(need(HSC / "chrom.sizes"))
    store = open_store(bin_track(HSC / "noisy_5M.coverage.bw", sizes, tmp_path / "bw", stat="sum")["store"])
    expected = coverage_bins(hsc_chr1_positions(), sizes["chr1"], 25, 100, "sum")
    np.testing.assert_array_equal(store.array("chr1"), expected)

    peaks = open_store(bin_track(HSC / "clean_80M.peaks.bed", sizes, tmp_path / "pk", representation="peak-signal")["store"])
    assert peaks.representation == "peak-signal"
    assert (peaks.array("chr1") > 0).any() and (peaks.array("chr1") == 0).mean() > 0.5


def test_bin_track_bad_input_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.bed"
    bad.write_text("chr1\tnot_a_number\t5\tN\t1000\t+\n")
    with pytest.raises(InputError):
        bin_track(bad, {"chr1": 1000}, tmp_path / "out", fmt="insertions")
    assert not [p for p in tmp_path.iterdir() if p.name != "bad.bed"]


# ---------------------------------------------------------------- store

def test_store_round_trip_and_checks(tmp_path):
    sizes = {"chr1": 1000, "chr2": 260, "chr3": 50}
    with StoreWriter(tmp_path / "x.tracks", 25, "coverage", sizes, source="test") as writer:
        writer.add("chr1", np.arange(40))
        with pytest.raises(InputError, match="expected 11"):
            writer.add("chr2", np.ones(10))
        writer.add("chr2", np.ones(11))
        with pytest.raises(InputError, match="twice"):
            writer.add("chr2", np.ones(11))
        with pytest.raises(InputError, match="chrom sizes"):
            writer.add("chrX", np.ones(10))
    store = open_store(tmp_path / "x.tracks")
    assert store.chroms == ["chr1", "chr2"] and store.meta["source"] == "test"
    chr1 = store.array("chr1")
    assert isinstance(chr1, np.memmap) and chr1.dtype == np.float32 and chr1[39] == 39
    with pytest.raises(InputError, match="chr3"):
        store.array("chr3")                      # never added: absent


def test_store_writer_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with StoreWriter(tmp_path / "y.tracks", 25, "coverage", {"chr1": 100}) as writer:
            writer.add("chr1", np.zeros(4))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_open_store_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_store(tmp_path / "missing.tracks")
    folder = tmp_path / "s.tracks"
    folder.mkdir()
    with pytest.raises(InputError, match="meta.json"):
        open_store(folder)
    (folder / "meta.json").write_text("{not json")
    with pytest.raises(InputError, match="malformed"):
        open_store(folder)
    (folder / "meta.json").write_text(json.dumps({"format": "other/1"}))
    with pytest.raises(InputError, match="format"):
        open_store(folder)
    (folder / "meta.json").write_text(json.dumps({"format": "atacdenoise-tracks/1", "bin_size": 25}))
    with pytest.raises(InputError, match="malformed"):
        open_store(folder)


# ---------------------------------------------------------------- windows

SPEC = WindowSpec(64, 16)


def test_sample_starts_valid_and_weighted():
    rng = np.random.default_rng(0)
    starts = sample_starts({"a": 1064, "b": 163, "short": 10}, 4000, SPEC, rng)
    chroms = [c for c, _ in starts]
    assert "short" not in chroms
    assert all(0 <= s <= {"a": 1000, "b": 99}[c] for c, s in starts)
    # 1001 vs 100 valid starts
    assert abs(chroms.count("b") / len(chroms) - 100 / 1101) < 0.02
    a_starts = np.array([s for c, s in starts if c == "a"])
    assert a_starts.min() < 30 and a_starts.max() > 970
    with pytest.raises(InputError):
        sample_starts({"short": 10}, 5, SPEC, rng)


@pytest.mark.parametrize("length", [1, 16, 17, 100, 1000])
def test_tiled_targets_reassemble_track(length):
    track = np.random.default_rng(length).random(length).astype(np.float32)
    starts = tile_starts(length, SPEC)
    windows = extract(track, starts, SPEC.window_bins)
    targets = windows[:, SPEC.flank : SPEC.flank + SPEC.target_bins].ravel()
    np.testing.assert_array_equal(targets[:length], track)
    assert not targets[length:].any()           # overhang padded with zeros
    assert starts[0] == -SPEC.flank


def test_extract_pads_with_zeros():
    track = np.arange(1, 11, dtype=np.float32)
    got = extract(track, np.array([-3, 4, 8]), 5)
    np.testing.assert_array_equal(got, [[0, 0, 0, 1, 2], [5, 6, 7, 8, 9], [9, 10, 0, 0, 0]])
    assert extract(track, np.array([], dtype=np.int64), 5).shape == (0, 5)


def test_split_chromosomes():
    split = split_chromosomes(["chr1", "chr2", "chr3", "chr4"], ["chr2"], ["chr4"])
    assert split == {"train": ["chr1", "chr3"], "val": ["chr2"], "test": ["chr4"]}
    with pytest.raises(InputError, match="chr9"):
        split_chromosomes(["chr1", "chr2"], ["chr9"], [])
    with pytest.raises(InputError, match="both"):
        split_chromosomes(["chr1", "chr2", "chr3"], ["chr2"], ["chr2"])


def write_store(path, sizes, arrays, bin_size=25, representation="coverage"):
    with StoreWriter(path, bin_size, representation, sizes) as writer:
        for chrom, values in arrays.items():
            writer.add(chrom, values)
    return open_store(path)


def test_make_windows(tmp_path):
    sizes = {"chr1": 25 * 300, "chr2": 25 * 100}
    rng = np.random.default_rng(0)
    noisy_arrays = {c: rng.random(n // 25).astype(np.float32) for c, n in sizes.items()}
    clean_arrays = {c: v * 10 for c, v in noisy_arrays.items()}
    peak_arrays = {c: (v > 0.8) * 5.0 for c, v in noisy_arrays.items()}
    noisy = write_store(tmp_path / "n.tracks", sizes, noisy_arrays)
    clean = write_store(tmp_path / "c.tracks", sizes, clean_arrays)
    peaks = write_store(tmp_path / "p.tracks", sizes, peak_arrays, representation="peak-signal")

    pairs = make_windows(noisy, clean, ["chr1", "chr2"], 50, SPEC, seed=1, clean_peaks_store=peaks)
    assert pairs["inputs"].shape == (50, 64) and pairs["targets"].shape == (50, 16)
    for i in range(50):
        chrom, start = str(pairs["chrom"][i]), int(pairs["start"][i])
        np.testing.assert_array_equal(pairs["inputs"][i], noisy_arrays[chrom][start : start + 64])
        centre = slice(start + SPEC.flank, start + SPEC.flank + 16)
        np.testing.assert_allclose(pairs["targets"][i], clean_arrays[chrom][centre])
        np.testing.assert_array_equal(pairs["peaks"][i], (peak_arrays[chrom][centre] > 0).astype(np.float32))
    again = make_windows(noisy, clean, ["chr1", "chr2"], 50, SPEC, seed=1)
    assert "peaks" not in again and np.array_equal(again["inputs"], pairs["inputs"])

    tiled = make_windows(noisy, clean, ["chr2"], None, SPEC, seed=0)
    np.testing.assert_allclose(tiled["targets"].ravel()[:100], clean_arrays["chr2"])


def test_make_windows_rejects_mismatched_stores(tmp_path):
    sizes = {"chr1": 2500}
    noisy = write_store(tmp_path / "n.tracks", sizes, {"chr1": np.zeros(100)})
    coarse = write_store(tmp_path / "c50.tracks", sizes, {"chr1": np.zeros(50)}, bin_size=50)
    with pytest.raises(InputError) as err:
        make_windows(noisy, coarse, ["chr1"], 5, SPEC, seed=0)
    assert "n.tracks" in str(err.value) and "c50.tracks" in str(err.value)
    longer = write_store(tmp_path / "l.tracks", {"chr1": 2525}, {"chr1": np.zeros(101)})
    with pytest.raises(InputError) as err:
        make_windows(noisy, longer, ["chr1"], 5, SPEC, seed=0)
    assert "n.tracks" in str(err.value) and "l.tracks" in str(err.value)


def test_bin_track_from_bam_skips_excluded_contigs(tmp_path):
    from atacdenoise.io.reads import iter_insertions

    sizes = {"chrM": 16_571, "chr1": 249_250_621}
    store = open_store(bin_track(need(GM12878_BAM), sizes, tmp_path / "gm", stat="max")["store"])
    assert store.chroms == ["chr1"]                 # chrM is filtered out on purpose, not stored as zeros
    [(chrom, positions)] = list(iter_insertions(GM12878_BAM, sizes))
    np.testing.assert_array_equal(store.array("chr1"), coverage_bins(positions, sizes["chr1"], 25, 100, "max"))
