"""Insertions recovered from coverage, training windows redrawn every epoch, and the search on such a source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from atacdenoise.errors import InputError
from atacdenoise.io.narrowpeak import read_peaks
from atacdenoise.tracks.binning import coverage_bins
from atacdenoise.tracks.deconvolve import counts_from_coverage, coverage_from_counts, insertions_from_coverage
from atacdenoise.tracks.windows import WindowSpec

REPO = Path(__file__).resolve().parents[1]
HSC = REPO.parent / "shared" / "data" / "hsc"


def random_insertions(rng, length: int, n: int) -> np.ndarray:
    return np.sort(rng.integers(0, length, size=n))


# ---------------------------------------------------------------- deconvolution

@pytest.mark.parametrize("extend", [0, 3, 100])
def test_counts_from_coverage_inverts_extended_coverage(extend):
    rng = np.random.default_rng(extend)
    length = 30_000
    positions = random_insertions(rng, length, 600)
    counts = np.bincount(positions, minlength=length)
    # Coverage of an inner segment: insertions within extend bp outside it still count.
    lo, hi = 5_000, 25_000
    coverage = coverage_bins(positions, length, bin_size=1, extend=extend, stat="sum")[lo:hi]
    recovered = counts_from_coverage(coverage, extend)
    np.testing.assert_array_equal(recovered, counts[lo - extend:hi + extend])
    np.testing.assert_array_equal(coverage_from_counts(recovered, extend), coverage)


def test_counts_from_coverage_refuses_other_tracks():
    with pytest.raises(ValueError, match="whole numbers"):
        counts_from_coverage(np.array([0.5, 1.0, 1.0]), 1)
    # Clipped at 2: no non-negative counts give this shape (a step up by 3 and down by 1 inside one window).
    with pytest.raises(ValueError, match="no non-negative insertion counts"):
        counts_from_coverage(np.array([0, 0, 3, 3, 2, 0, 0, 0, 0, 0, 0, 0]), 1)


def test_insertions_from_coverage_bigwig_per_region(tmp_path):
    """A track defined only in regions (zero elsewhere) is recovered region by region, each exactly."""
    from atacdenoise.io.bigwig import write_bigwig

    rng = np.random.default_rng(0)
    length, extend = 50_000, 100
    positions = random_insertions(rng, length, 1_500)
    coverage = coverage_bins(positions, length, bin_size=1, extend=extend, stat="sum")
    regions = [(2_000, 12_000), (30_000, 45_000)]
    defined = np.zeros(length, np.float32)
    for a, b in regions:
        defined[a:b] = coverage[a:b]
    bigwig = tmp_path / "clean.bw"
    write_bigwig(bigwig, {"chrA": length}, iter([("chrA", defined)]), 1)
    bed = tmp_path / "regions.bed"
    bed.write_text("".join(f"chrA\t{a}\t{b}\n" for a, b in regions))
    recovered = dict(insertions_from_coverage(bigwig, {"chrA": length}, read_peaks(bed), extend))["chrA"]
    expected = np.concatenate([positions[(positions >= a - extend) & (positions < b + extend)] for a, b in regions])
    np.testing.assert_array_equal(recovered, expected)
    with pytest.raises(InputError, match="chrA:0-50000"):  # without regions the zeros outside contradict
        list(insertions_from_coverage(bigwig, {"chrA": length}, None, extend))


@pytest.mark.realdata
def test_hsc_shallow_library_is_a_sixteenth_of_the_deep_one():
    """The premise of resampling: the 5M insertions are a subset of the 80M ones recovered from coverage."""
    if not (HSC / "clean_80M.coverage.bw").exists():
        pytest.skip(f"real data not found at {HSC}")
    from atacdenoise.io.chromsizes import read_chrom_sizes
    from atacdenoise.io.reads import iter_insertions

    sizes = read_chrom_sizes(HSC / "chrom.sizes")
    regions = read_peaks(HSC / "clean_80M.labelled_regions.bed")
    clean = dict(insertions_from_coverage(HSC / "clean_80M.coverage.bw", sizes, regions))
    for chrom, noisy in iter_insertions(HSC / "noisy_5M.tn5_insertions.bed.gz", sizes):
        on_chrom = regions.get(chrom)
        inside = np.zeros(sizes[chrom], bool)
        for a, b in zip(on_chrom.starts, on_chrom.ends):
            inside[a:b] = True
        noisy = noisy[inside[noisy]]
        clean_counts = np.bincount(clean[chrom], minlength=sizes[chrom])
        missing = np.clip(np.bincount(noisy, minlength=sizes[chrom]) - clean_counts, 0, None).sum()
        assert missing == 0
        assert len(noisy) / inside[clean[chrom]].sum() == pytest.approx(1 / 16, rel=0.03)


# ---------------------------------------------------------------- the resampling source

@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A clean library of 40k insertions on two 400 kb chromosomes, half in 'peaks'; shallow = 1/16 of it."""
    from atacdenoise.search.resample import build_source

    folder = tmp_path_factory.mktemp("source")
    rng = np.random.default_rng(1)
    sizes = {"chrA": 400_000, "chrB": 400_000}
    centres = rng.integers(20_000, 380_000, size=40)
    clean = {}
    for chrom in sizes:
        in_peaks = (rng.choice(centres, 10_000) + rng.normal(0, 80, 10_000)).astype(np.int64)
        clean[chrom] = np.sort(np.concatenate([in_peaks, rng.integers(0, sizes[chrom], 10_000)]))
    peaks = folder / "peaks.bed"
    peaks.write_text("".join(f"chrA\t{c - 150}\t{c + 150}\n" for c in sorted(centres)))
    regions_bed = folder / "regions.bed"
    regions_bed.write_text("chrA\t0\t300000\n")
    made = build_source(iter(clean.items()), peaks, sizes, ["chrA"], reference_insertions=40_000 // 16,
                        depths=(0.1, 1.0), regions=read_peaks(regions_bed), spec=WindowSpec(256, 64),
                        windows_per_epoch=64)
    return {"source": made, "clean": clean, "sizes": sizes, "folder": folder}


def test_draws_are_reproducible_and_fresh(source):
    s = source["source"]
    first, again, other = s.draw(32, [0, 1]), s.draw(32, [0, 1]), s.draw(32, [0, 2])
    for key in ("inputs", "targets", "peaks", "start", "depth"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["inputs"], other["inputs"])
    # The same window drawn twice gets the same target but (almost surely) different noise.
    same = s.draw(2000, [5])
    starts, counts = np.unique(same["start"], return_counts=True)
    assert (counts > 1).any(), "2000 draws over ~12,000 starts should repeat a window"
    j, k = np.flatnonzero(same["start"] == starts[counts > 1][0])[:2]
    np.testing.assert_array_equal(same["targets"][j], same["targets"][k])
    assert not np.array_equal(same["inputs"][j], same["inputs"][k])


def test_draws_respect_regions_depths_and_scale(source):
    s = source["source"]
    draw = s.draw(3000, [7])
    spec = s.spec
    # Every target lies inside chrA:0-300000 (the regions), in 25 bp bins.
    assert ((draw["start"] + spec.flank + spec.target_bins) * 25 <= 300_000).all()
    assert (draw["chrom"] == "chrA").all()
    assert draw["depth"].min() >= 0.1 - 1e-6 and draw["depth"].max() <= 1.0 + 1e-6
    assert np.median(draw["depth"]) == pytest.approx(np.sqrt(0.1), rel=0.15)  # log-uniform
    # Per-million scaling by the thinned library: noisy inputs match the clean targets on average, at any depth.
    flank = spec.flank
    centre = draw["inputs"][:, flank:flank + spec.target_bins]
    for shallow in (draw["depth"] < 0.3, draw["depth"] > 0.5):
        assert centre[shallow].mean() == pytest.approx(draw["targets"][shallow].mean(), rel=0.1)
    # Lower depth, noisier input.
    error = np.abs(centre - draw["targets"]).mean(axis=1)
    assert error[draw["depth"] < 0.2].mean() > 1.5 * error[draw["depth"] > 0.7].mean()
    assert draw["peaks"].any() and not draw["peaks"].all()


def test_source_round_trips_through_a_file(source, tmp_path):
    from atacdenoise.search.resample import is_source, load_source, save_source

    path = tmp_path / "train.npz"
    save_source(path, source["source"])
    assert is_source(path)
    loaded = load_source(path)
    assert loaded.meta == source["source"].meta
    np.testing.assert_array_equal(loaded.draw(8, [3])["inputs"], source["source"].draw(8, [3])["inputs"])
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    assert not is_source(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="bad.npz"):
        load_source(tmp_path / "bad.npz")


def test_build_source_refuses_a_shallow_library_larger_than_the_clean_one(source):
    from atacdenoise.search.resample import build_source

    with pytest.raises(InputError, match="larger than the clean one"):
        build_source(iter(source["clean"].items()), source["folder"] / "peaks.bed", source["sizes"], ["chrA"],
                     reference_insertions=10**6, spec=WindowSpec(256, 64))
    with pytest.raises(InputError, match="chrC"):
        build_source(iter(source["clean"].items()), source["folder"] / "peaks.bed", {**source["sizes"], "chrC": 10},
                     ["chrC"], reference_insertions=10, spec=WindowSpec(256, 64))


def test_search_redraws_training_windows_every_epoch(source, tmp_path):
    """A search on a source trains on new noise each epoch, the same for every candidate, and resumes."""
    torch = pytest.importorskip("torch")
    from atacdenoise.search.data import save_pairs
    from atacdenoise.search.candidate import SearchData
    from atacdenoise.search.nash import as_pairs, run_search

    val_draw = source["source"].draw(32, [99])
    val = {**val_draw, "meta": {**source["source"].meta, "format": "atacdenoise-pairs/1", "chroms": ["chrB"]}}
    save_pairs(tmp_path / "val.npz", val)
    train = as_pairs(source["source"])
    data = SearchData.from_pairs(train, val, None, "cpu", draw_seed=4)
    assert len(data.train_x) == 64  # windows_per_epoch
    epoch0 = data.train_x.clone()
    data.start_epoch(1)
    assert not torch.equal(epoch0, data.train_x)
    data.start_epoch(0)
    assert torch.equal(epoch0, data.train_x)

    settings = dict(space="dilated1d", iterations=1, children=1, epochs=2, initial_random_draws=1, initial_epochs=1,
                    batch_size=32, seed=4, progress=False)
    summary = run_search(source["source"], tmp_path / "val.npz", tmp_path / "run", **settings)
    assert summary["n_train"] == 64 and summary["candidates_trained"] == 2
    again = run_search(source["source"], tmp_path / "val.npz", tmp_path / "run2", **settings)
    assert again["best_val_loss"] == summary["best_val_loss"]  # deterministic on CPU, draws included


# ---------------------------------------------------------------- prepare --regions / --resample

PREPARE_SIZES = {"chrA": 200_000, "chrB": 200_000}


def write_prepare_inputs(folder: Path) -> dict:
    """A clean library (8k insertions per chromosome; its coverage bigWig), a 1/16 noisy one, peaks, regions;
    returns the clean insertions."""
    from atacdenoise.io.bigwig import write_bigwig

    rng = np.random.default_rng(2)
    sizes = PREPARE_SIZES
    clean = {c: random_insertions(rng, n, 8_000) for c, n in sizes.items()}
    noisy = {c: np.sort(rng.choice(p, len(p) // 16, replace=False)) for c, p in clean.items()}
    (folder / "noisy.bed").write_text("".join(f"{c}\t{p}\t{p + 1}\t.\t0\t+\n" for c, ps in noisy.items() for p in ps))
    write_bigwig(folder / "clean.bw", sizes,
                 ((c, coverage_bins(p, sizes[c], 1, 100, "sum")) for c, p in clean.items()), 1)
    (folder / "peaks.bed").write_text("chrA\t1000\t1500\nchrB\t5000\t5600\n")
    (folder / "regions.bed").write_text("chrA\t0\t200000\nchrB\t0\t100000\n")
    (folder / "sizes").write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))
    return clean


def test_prepare_resample_writes_a_source_and_regions_filter_validation(tmp_path):
    from atacdenoise.cli import main
    from atacdenoise.search.data import load_pairs
    from atacdenoise.search.resample import is_source, load_source

    clean = write_prepare_inputs(tmp_path)
    argv = ["prepare", "--insertions", str(tmp_path / "noisy.bed"), "--clean-bigwig", str(tmp_path / "clean.bw"),
            "--clean-peaks", str(tmp_path / "peaks.bed"), "--chrom-sizes", str(tmp_path / "sizes"),
            "--train-chroms", "chrA", "--val-chroms", "chrB", "--depths", "0.2,1.0", "--n-train", "50",
            "--window", "256", "--target", "64", "--regions", str(tmp_path / "regions.bed"), "--resample",
            "--outdir", str(tmp_path / "out")]
    assert main(argv) == 0
    assert is_source(tmp_path / "out" / "train.npz")
    source = load_source(tmp_path / "out" / "train.npz")
    # Recovered from the bigWig inside the regions (and their 100 bp margins); the shallow library is the reference.
    in_reach = len(clean["chrA"]) + (clean["chrB"] < 100_100).sum()
    assert source.meta["clean_insertions"] == in_reach and source.meta["reference_insertions"] == 1_000
    val = load_pairs(tmp_path / "out" / "val.npz")
    # chrB is scored on its first 100 kb only: 62 whole 64-bin (1.6 kb) targets, at each of 2 depths.
    assert len(val["inputs"]) == 2 * (100_000 // 1_600)
    assert ((val["start"] + 96 + 64) * 25 <= 100_000).all()


def test_learning_curve_keeps_only_windows_in_the_leading_part(source, monkeypatch):
    import importlib.util

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # it imports its sibling compare_checkpoints
    spec = importlib.util.spec_from_file_location("bench_learning_curve", REPO / "benchmarks" / "bench_learning_curve.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    s = source["source"]
    half = bench.leading_part(s, 0.5)
    draw = half.draw(2000, [3])
    assert ((draw["start"] + s.spec.window_bins) * 25 <= 200_000).all()  # whole inputs inside chrA:0-200000
    assert draw["start"].max() * 25 > 150_000  # ... and up to its end
    # Targets keep their units: the same start gives the same target in the whole and the part.
    whole = s.draw(4000, [4])
    start = np.intersect1d(whole["start"], draw["start"])[0]
    np.testing.assert_array_equal(whole["targets"][whole["start"] == start][0], draw["targets"][draw["start"] == start][0])
    assert 0 < bench.insertions_in_reach(half) < bench.insertions_in_reach(s)


@pytest.mark.parametrize("resample", [False, True])
def test_prepare_opens_the_clean_bigwig_once_and_builds_what_make_pairs_builds(tmp_path, monkeypatch, resample):
    import pyBigWig

    from atacdenoise.search.data import load_pairs, make_pairs, prepare

    write_prepare_inputs(tmp_path)
    files = [tmp_path / "noisy.bed", tmp_path / "clean.bw", tmp_path / "peaks.bed"]
    real_open, opened = pyBigWig.open, []
    monkeypatch.setattr(pyBigWig, "open", lambda path, *mode: opened.append(Path(path).name) or real_open(path, *mode))
    prepare(*files, PREPARE_SIZES, ["chrA"], ["chrB"], tmp_path / "out", depths=(0.5, 1.0), n_train=40,
            spec=WindowSpec(256, 64), resample=resample, regions=read_peaks(tmp_path / "regions.bed"))
    assert opened == ["clean.bw"]  # sizes, library size, targets and deconvolution share one handle
    monkeypatch.undo()
    # The same pairs as make_pairs from the path, which opens the file by itself.
    val = load_pairs(tmp_path / "out" / "val.npz")
    expected = make_pairs(*files, PREPARE_SIZES, ["chrB"], (0.5, 1.0), None, WindowSpec(256, 64),
                          regions=read_peaks(tmp_path / "regions.bed"))
    for key in ("inputs", "targets", "peaks", "depth", "start"):
        np.testing.assert_array_equal(val[key], expected[key])
    assert val["meta"]["clean_depth"] == expected["meta"]["clean_depth"]
    assert val["meta"]["sources"]["clean"] == str(tmp_path / "clean.bw")
