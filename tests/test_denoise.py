"""denoise/: ONNX contract, tiling, normalisation, peaks and every mismatch error, without torch or servers.

The model here is a hand-built ONNX graph (no torch, no training): ``signal`` is
the window's centre (so the denoised track must equal the model's input track
exactly) and ``peak_logits = centre - 1``. That makes tiling, binning and
per-million scaling checkable bin by bin.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyBigWig
import pytest

from atacdenoise.denoise import denoise
from atacdenoise.tracks.depth import REFERENCE_DENSITY
from atacdenoise.denoise.contract import ModelContract
from atacdenoise.denoise.onnx_runner import OnnxDenoiser, sigmoid
from atacdenoise.denoise.peaks_from_prob import PeakStream, called_runs, peaks_from_prob
from atacdenoise.denoise.run import STORED_VALUES, output_paths
from atacdenoise.errors import InputError
from atacdenoise.io.narrowpeak import read_peaks
from atacdenoise.tracks.binning import coverage_bins

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WINDOW, TARGET = 256, 64
SIZES = {"chr1": 180_000, "chr2": 95_010}  # chr2 ends inside a bin: partial last bin and window


def centre_model(path: Path, contract: ModelContract, metadata: bool = True) -> Path:
    """ONNX graph: signal = x[:, flank:flank+target], peak_logits = signal - 1."""
    import onnx
    from onnx import TensorProto, helper

    flank = contract.flank
    const = lambda name, values: helper.make_tensor(name, TensorProto.INT64, [len(values)], values)  # noqa: E731
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["signal"]),
             helper.make_node("Sub", ["signal", "one"], ["peak_logits"])]
    graph = helper.make_graph(
        nodes, "centre",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", contract.window_bins])],
        [helper.make_tensor_value_info("signal", TensorProto.FLOAT, ["batch", contract.target_bins]),
         helper.make_tensor_value_info("peak_logits", TensorProto.FLOAT, ["batch", contract.target_bins])],
        initializer=[const("starts", [flank]), const("ends", [flank + contract.target_bins]), const("axes", [1]),
                     helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if metadata:
        helper.set_model_props(model, contract.to_metadata())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_insertions(path: Path, sizes: dict[str, int], n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A synthetic insertions BED: uniform background plus a few dense sites (test fixture, not real data)."""
    rng = np.random.default_rng(seed)
    positions = {}
    with gzip.open(path, "wt") as out:
        for chrom, length in sizes.items():
            sites = rng.integers(0, length, 5)
            pos = np.concatenate([rng.integers(0, length, n), (sites[:, None] + rng.integers(-60, 60, (5, 200))).ravel()])
            pos = np.sort(np.clip(pos, 0, length - 1))
            positions[chrom] = pos
            out.write("".join(f"{chrom}\t{p}\t{p + 1}\t.\t0\t+\n" for p in pos))
    return positions


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("denoise")
    contract = ModelContract(space="test-centre", window_bins=WINDOW, target_bins=TARGET, genome="hg19")
    model = centre_model(root / "centre.onnx", contract)
    positions = write_insertions(root / "ins.bed.gz", SIZES, 2000)
    return {"root": root, "model": model, "contract": contract, "positions": positions,
            "insertions": root / "ins.bed.gz"}


def read_bins(path, chrom, length, bin_size=25) -> np.ndarray:
    with pyBigWig.open(str(path)) as bw:
        values = np.nan_to_num(np.array(bw.values(chrom, 0, length), dtype=np.float64))
    edges = np.arange(0, length, bin_size)
    return np.add.reduceat(values, edges) / np.diff(np.append(edges, length))


@pytest.mark.parametrize("exact_values", [True, False], ids=["exact", "stored-rounded"])
def test_denoised_track_is_the_model_output_over_tiled_windows(work, exact_values):
    out = denoise(work["insertions"], work["model"], SIZES, work["root"] / f"run{exact_values}" / "s", genome="hg19",
                  progress=False, exact_values=exact_values)
    total = sum(len(p) for p in work["positions"].values())
    # Exact: float32 as the model gave it; by default: the documented stored precision (run.STORED_VALUES).
    signal_rtol, prob_atol = (1e-5, 1e-6) if exact_values else (2 ** -11 + 1e-6, 0.0005 + 1e-6)
    for chrom, length in SIZES.items():
        # Density normalisation: no 100 kb block here is a pile-up, so the depth is insertions / covered bases.
        expected = coverage_bins(work["positions"][chrom], length, 25, 100, "mean",
                                 scale=REFERENCE_DENSITY * sum(SIZES.values()) / total)
        denoised = read_bins(out["denoised"], chrom, length)
        # The centre model returns its input: every bin once, in model units, including the partial last bin.
        np.testing.assert_allclose(denoised, expected, rtol=signal_rtol, atol=1e-6)
        prob = read_bins(out["peakprob"], chrom, length)
        np.testing.assert_allclose(prob, sigmoid(expected.astype(np.float32) - 1), rtol=1e-5, atol=prob_atol)
        if not exact_values:  # rounded, not merely close: at most 1,001 probabilities, 11 significant bits
            assert np.unique(prob).size <= 1001
            mantissas = np.frexp(denoised.astype(np.float32))[0]
            np.testing.assert_array_equal(mantissas * 2 ** 11, np.round(mantissas * 2 ** 11))
    record = json.loads(Path(out["provenance"]).read_text())
    assert record["stored_values"] == ("exact" if exact_values else STORED_VALUES)
    peaks = read_peaks(out["peaks"])
    assert peaks, "the dense sites must give peaks"
    for chrom, chrom_peaks in peaks.items():
        prob = read_bins(out["peakprob"], chrom, SIZES[chrom])
        for start, end in zip(chrom_peaks.starts, chrom_peaks.ends):
            assert prob[start // 25:-(-end // 25)].max() >= 0.5
            assert end <= SIZES[chrom]


def test_blacklist_drops_exactly_the_peaks_it_overlaps_and_keeps_the_tracks(work):
    from conftest import blacklist_against

    whole = denoise(work["insertions"], work["model"], SIZES, work["root"] / "all" / "s", genome="hg19", progress=False)
    hit = blacklist_against(whole["peaks"], work["root"] / "blacklist.bed")
    kept = denoise(work["insertions"], work["model"], SIZES, work["root"] / "kept" / "s", genome="hg19",
                   progress=False, blacklist=work["root"] / "blacklist.bed")

    def records(lines):  # all but the name, which is numbered across the file
        return [line.split("\t")[:3] + line.split("\t")[4:] for line in lines]

    lines = Path(whole["peaks"]).read_text().splitlines(keepends=True)
    assert len(lines) > 3 and hit
    assert records(Path(kept["peaks"]).read_text().splitlines(keepends=True)) == \
        records(line for line in lines if line not in hit)
    for chrom, length in SIZES.items():
        np.testing.assert_array_equal(read_bins(kept["denoised"], chrom, length), read_bins(whole["denoised"], chrom, length))


def test_a_run_without_the_peak_probability_or_bedgraphs_removes_an_earlier_runs(work, caplog):
    prefix = work["root"] / "stale" / "s"
    first = denoise(work["insertions"], work["model"], SIZES, prefix, progress=False, bedgraph=True)
    assert all(Path(first[key]).exists() for key in ("peakprob", "denoised_bedgraph", "peakprob_bedgraph"))
    with caplog.at_level(logging.WARNING):
        second = denoise(work["insertions"], work["model"], SIZES, prefix, progress=False, peakprob=False)
    assert "peakprob" not in second and Path(second["denoised"]).exists()
    for key in ("peakprob", "denoised_bedgraph", "peakprob_bedgraph"):
        assert not Path(first[key]).exists() and f"removed {first[key]}" in caplog.text


def test_peaks_merge_gaps_of_one_bin_only():
    prob = np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.6, 0.95, 0.0], np.float32)
    starts, ends = called_runs(prob >= 0.5, max_gap=1)
    assert starts.tolist() == [0, 5] and ends.tolist() == [3, 8]
    peaks = peaks_from_prob("chr1", prob, 25, 9 * 25 - 10)
    assert peaks.starts.tolist() == [0, 125] and peaks.ends.tolist() == [75, 200]
    assert peaks.summits.tolist() == [12, 62]          # centre of the max-probability bin, from the start
    np.testing.assert_allclose(peaks.signal, [90, 95])  # max probability in percent: score = 1000 * p
    assert len(peaks_from_prob("chr1", np.zeros(5, np.float32), 25, 125).starts) == 0


def test_bigwig_input_is_rebinned_and_scaled_like_insertions(work):
    root, chrom, length = work["root"], "chr1", SIZES["chr1"]
    per_base = np.zeros(length)
    for p in work["positions"][chrom]:
        per_base[max(p - 100, 0):p + 101] += 1
    bw_path = root / "cov.bw"
    with pyBigWig.open(str(bw_path), "w") as bw:
        bw.addHeader([(chrom, length)])
        bw.addEntries(chrom, 0, values=per_base.tolist(), span=1, step=1)
    out = denoise(bw_path, work["model"], {chrom: length}, root / "bw" / "s", progress=False, exact_values=True)
    # library size = coverage / 201 bases per insertion (edge clipping makes it approximate)
    total = per_base.sum() / 201
    expected = coverage_bins(work["positions"][chrom], length, 25, 100, "mean", scale=REFERENCE_DENSITY * length / total)
    np.testing.assert_allclose(read_bins(out["denoised"], chrom, length), expected, rtol=1e-4, atol=1e-5)


def assert_no_outputs(prefix):
    paths = output_paths(prefix)
    assert not any(p.exists() for p in paths.values())
    parent = paths["denoised"].parent
    assert not parent.exists() or not list(parent.iterdir()), "temporary files left behind"


@pytest.mark.parametrize("case", ["genome", "naming", "corrupt", "no-contract", "bigwig-resolution", "missing"])
def test_mismatches_are_one_clear_error_and_no_output(work, case):
    root = work["root"]
    prefix = root / f"bad-{case}" / "s"
    kwargs = {"input": work["insertions"], "model": work["model"], "chrom_sizes": SIZES, "genome": "hg19"}
    if case == "genome":
        kwargs["genome"], expect = "hg38", "trained on genome 'hg19'"
    elif case == "naming":
        kwargs["chrom_sizes"], expect = {"1": 180_000, "2": 95_010}, "named like '1'"
    elif case == "corrupt":
        bad = root / "corrupt.onnx"
        bad.write_bytes(work["model"].read_bytes()[:200])
        kwargs["model"], expect = bad, "not a valid ONNX model"
    elif case == "no-contract":
        kwargs["model"] = centre_model(root / "bare.onnx", work["contract"], metadata=False)
        expect = "carries no atacdenoise contract"
    elif case == "missing":
        kwargs["model"], expect = root / "nope.onnx", "does not exist"
    else:
        coarse = root / "coarse50.bw"
        with pyBigWig.open(str(coarse), "w") as bw:
            bw.addHeader([("chr1", 180_000)])
            bw.addEntries("chr1", 0, values=[1.0] * 3600, span=50, step=50)
        kwargs["input"], kwargs["chrom_sizes"], expect = coarse, {"chr1": 180_000}, "binned at 50 bp"
    with pytest.raises(InputError, match=expect):
        denoise(out_prefix=prefix, progress=False, **kwargs)
    assert_no_outputs(prefix)


def test_denoise_path_never_imports_torch(work):
    """The inference container has no torch: run the whole path in a fresh interpreter and check."""
    code = (
        "import sys\n"
        "from atacdenoise.cli_registry import add_denoise_parser\n"
        "import argparse\n"
        "parser = argparse.ArgumentParser(); add_denoise_parser(parser.add_subparsers())\n"
        f"sizes = {str(work['root'] / 'sizes.txt')!r}\n"
        f"open(sizes, 'w').write({''.join(f'{c}	{n}' + chr(10) for c, n in SIZES.items())!r})\n"
        f"args = parser.parse_args(['denoise', '--input', {str(work['insertions'])!r}, '--model', "
        f"{str(work['model'])!r}, '--chrom-sizes', sizes, '--out-prefix', {str(work['root'] / 'cli' / 's')!r}, "
        "'--quiet', '--threads', '1'])\n"
        "args.func(args)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('NO_TORCH')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "NO_TORCH" in result.stdout
    assert (work["root"] / "cli" / "s.denoised.bw").exists()


def test_contract_round_trips_through_onnx_metadata(work):
    runner = OnnxDenoiser(work["model"], threads=1)
    assert runner.contract == work["contract"]
    windows = np.random.default_rng(1).random((5, WINDOW), dtype=np.float32)
    signal, prob = runner.predict(windows, batch_size=2)
    np.testing.assert_array_equal(signal, windows[:, runner.contract.flank:runner.contract.flank + TARGET])
    with pytest.raises(InputError, match="windows of 256 bins"):
        runner.predict(np.zeros((2, 100), np.float32))


@pytest.mark.realdata
def test_real_insertions_end_to_end(tmp_path):
    """HSC chr1+chr2 (first 10 Mb each), 4096/1024 windows: the denoised track is the model input, bin for bin."""
    insertions = SHARED_DATA / "hsc" / "noisy_5M.tn5_insertions.bed.gz"
    if not insertions.exists():
        pytest.skip(f"real data not found at {insertions}")
    from atacdenoise.io.chromsizes import read_chrom_sizes
    from atacdenoise.io.reads import iter_insertions

    sizes = read_chrom_sizes(SHARED_DATA / "hsc" / "chrom.sizes")
    contract = ModelContract(space="test-centre", genome="hg19")
    model = centre_model(tmp_path / "centre4096.onnx", contract)
    out = denoise(insertions, model, sizes, tmp_path / "hsc", genome="hg19", progress=False, exact_values=True)
    positions = dict(iter_insertions(insertions, sizes))
    total = sum(len(p) for p in positions.values())
    chrom = next(iter(positions))
    length = sizes[chrom]
    expected = coverage_bins(positions[chrom], length, 25, 100, "mean", scale=REFERENCE_DENSITY * 20e6 / total)
    np.testing.assert_allclose(read_bins(out["denoised"], chrom, length), expected, rtol=1e-5, atol=1e-6)


def test_cli_parsers_build():
    from atacdenoise.cli_registry import add_denoise_parser, add_registry_parsers

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_registry_parsers(sub)
    add_denoise_parser(sub)
    args = parser.parse_args(["registry", "promote", "--name", "m", "--version", "3", "--alias", "champion"])
    assert (args.name, args.version, args.alias) == ("m", "3", "champion")
    args = parser.parse_args(["registry", "compare", "--challenger-version", "2", "--data", "v.npz"])
    assert args.alias == "champion" and args.name == "atac-denoiser"


def test_bundled_default_model_denoises_real_insertions(tmp_path, shared_data):
    """Without --model the shipped model (registry/models/) is used; its contract matches the HSC data."""
    from atacdenoise.cli import main
    from atacdenoise.denoise import BUNDLED_MODEL

    assert BUNDLED_MODEL.stat().st_size < 10 * 2**20  # the bundled model stays small
    hsc = shared_data / "hsc"
    prefix = tmp_path / "hsc"
    assert main(["denoise", "--input", str(hsc / "noisy_5M.tn5_insertions.bed.gz"), "--chrom-sizes",
                 str(hsc / "chrom.sizes"), "--out-prefix", str(prefix), "--genome", "hg19", "--quiet"]) == 0
    import pyBigWig

    with pyBigWig.open(f"{prefix}.denoised.bw") as bw:
        assert bw.chroms() == {"chr1": 10_000_000, "chr2": 10_000_000}
        assert bw.stats("chr2", type="max")[0] > 0
    assert (tmp_path / "hsc.peaks.narrowPeak").read_text().count("\n") > 50  # the HSC data has ~1000 true peaks


def test_a_bundled_model_is_picked_by_its_name_and_an_unknown_name_is_one_clear_line(work, tmp_path, capsys):
    from atacdenoise.bundled import bundled_models_dir
    from atacdenoise.cli import main
    from atacdenoise.denoise.onnx_runner import load_denoiser

    denoiser = load_denoiser("atac-denoiser-counts-small")
    assert denoiser.path == bundled_models_dir() / "atac-denoiser-counts-small.onnx"
    assert load_denoiser(work["model"]).path == Path(work["model"])  # a file is a file, whatever its name
    prefix, sizes = tmp_path / "typo", tmp_path / "chrom.sizes"
    sizes.write_text("".join(f"{chrom}\t{n}\n" for chrom, n in SIZES.items()))
    assert main(["denoise", "--input", str(work["insertions"]), "--chrom-sizes", str(sizes),
                 "--model", "atac-denoiser-smal", "--out-prefix", str(prefix)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "atac-denoiser-smal" in lines[0] and "atac-denoiser-counts-small" in lines[0], lines
    assert not list(tmp_path.glob("typo*"))


def test_every_bundled_model_ships_with_its_card():
    folder = Path(__file__).resolve().parents[1] / "registry" / "models"
    models = sorted(folder.glob("*.onnx"))
    assert len(models) >= 4
    for model in models:
        card = model.with_suffix(".md")
        assert card.exists() and "## Measured" in card.read_text(), card


def test_the_hilbert2d_model_denoises_real_insertions_like_the_default(tmp_path, shared_data):
    """The seed's Hilbert-2D idea, picked with --model: same annotation files, same outputs, peaks called."""
    from atacdenoise.cli import main

    hsc = shared_data / "hsc"
    model = Path(__file__).resolve().parents[1] / "registry" / "models" / "atac-denoiser-hilbert2d.onnx"
    annotation = [arg for name in ("tss", "cpg_islands", "ctcf_sites")
                  for arg in ("--annotation", f"{name}={hsc / 'annotation' / (name + '.bed')}")]
    prefix = tmp_path / "hsc"
    assert main(["denoise", "--input", str(hsc / "noisy_5M.tn5_insertions.bed.gz"), "--model", str(model),
                 "--chrom-sizes", str(hsc / "chrom.sizes"), "--out-prefix", str(prefix), "--quiet",
                 *annotation]) == 0
    import pyBigWig

    with pyBigWig.open(f"{prefix}.denoised.bw") as bw:
        assert bw.chroms() == {"chr1": 10_000_000, "chr2": 10_000_000}
        assert bw.stats("chr2", type="max")[0] > 0
    assert (tmp_path / "hsc.peaks.narrowPeak").read_text().count("\n") > 50


def test_chunked_denoise_equals_a_whole_chromosome_run_bit_for_bit(shared_data):
    """The bundled counts model over 2 Mb of real HSC chr1 (79 windows) in chunks of 16 windows, each binning only
    its windows' span from the insertions, == the model over the whole chromosome's windows at once; and
    the streamed peak caller == peaks_from_prob on the whole probability track."""
    from atacdenoise.denoise.run import denoise_chunks
    from atacdenoise.io.reads import iter_insertions
    from atacdenoise.tracks.windows import WindowSpec, extract, tile_starts

    denoiser = OnnxDenoiser(Path(__file__).resolve().parents[1] / "registry" / "models" / "atac-denoiser-counts.onnx",
                            threads=1)
    c = denoiser.contract
    length = 2_000_010  # a partial last bin and a padded last window
    hsc = shared_data / "hsc"
    positions = dict(iter_insertions(hsc / "noisy_5M.tn5_insertions.bed.gz", {"chr1": 10_000_000}))["chr1"]
    positions = np.sort(positions[positions < length])
    whole = coverage_bins(positions, length, c.bin_size, c.extend, c.stat, scale=2.5)
    starts = tile_starts(len(whole), WindowSpec(c.window_bins, c.target_bins))
    signal, prob = denoiser.predict(extract(whole, starts, c.window_bins), batch_size=8)
    signal, prob = signal.ravel()[:len(whole)], prob.ravel()[:len(whole)]

    read = lambda lo, hi: coverage_bins(positions, length, c.bin_size, c.extend, c.stat, scale=2.5,  # noqa: E731
                                        bins=(lo, hi), presorted=True)
    chunks = list(denoise_chunks(denoiser, read, len(whole), batch_size=8, chunk_windows=16))
    assert len(chunks) == 5 and [first for first, _, _ in chunks] == [i * 16 * c.target_bins for i in range(5)]
    np.testing.assert_array_equal(np.concatenate([s for _, s, _ in chunks]), signal)
    np.testing.assert_array_equal(np.concatenate([p for _, _, p in chunks]), prob)

    threshold = float(np.quantile(prob, 0.97))  # enough peaks, some crossing chunk edges
    streamed = PeakStream("chr1", c.bin_size, length, threshold)
    for _, _, p in chunks:
        streamed.add(p)
    streamed = streamed.finish()
    expected = peaks_from_prob("chr1", prob, c.bin_size, length, threshold)
    assert len(expected.starts) > 10
    for name in ("starts", "ends", "signal", "summits"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(expected, name), err_msg=name)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 50])
def test_peak_stream_equals_peaks_on_the_whole_track(chunk):
    rng = np.random.default_rng(chunk)
    prob = (rng.random(400) < 0.45).astype(np.float32) * rng.uniform(0.5, 1, 400).astype(np.float32)
    prob[-3:] = 0.9  # a peak running into the clipped last bin
    stream = PeakStream("chr1", 25, 400 * 25 - 7, 0.5)
    for lo in range(0, 400, chunk):
        stream.add(prob[lo:lo + chunk])
    got, expected = stream.finish(), peaks_from_prob("chr1", prob, 25, 400 * 25 - 7, 0.5)
    for name in ("starts", "ends", "signal", "summits"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def test_empty_batches_get_the_model_output_exactly(shared_data):
    """Batches of windows without any insertion skip the model and get its output for an all-zero batch,
    computed once: bit for bit what running them gives, at two batch sizes, next to mixed batches."""
    from atacdenoise.tracks.windows import WindowSpec, extract, tile_starts
    from atacdenoise.io.reads import iter_insertions

    denoiser = OnnxDenoiser(Path(__file__).resolve().parents[1] / "registry" / "models" / "atac-denoiser-counts.onnx",
                            threads=2)  # the bundled counts-only model (the others read genome channels too)
    c = denoiser.contract
    length = 4_000_000
    positions = dict(iter_insertions(shared_data / "hsc" / "noisy_5M.tn5_insertions.bed.gz",
                                     {"chr1": 10_000_000}))["chr1"]
    bins = coverage_bins(positions[positions < length], length, c.bin_size, c.extend, c.stat, scale=2.5)
    bins[20_000:120_000] = 0  # a gap (like a centromere): a run of windows that see nothing at all
    windows = extract(bins, tile_starts(len(bins), WindowSpec(c.window_bins, c.target_bins)), c.window_bins)
    empty = ~windows.any(axis=1)
    assert 40 <= empty.sum() < len(windows)
    for batch_size in (8, 16):
        calls = []
        run_model = denoiser.session.run
        denoiser.session.run = lambda names, feed: calls.append(1) or run_model(names, feed)  # count model runs
        skipped = denoiser.predict(windows, batch_size)
        denoiser.session.run = run_model
        run = denoiser.predict(windows, batch_size, skip_constant=False)
        assert len(calls) <= -(-len(windows) // batch_size) - empty.sum() // batch_size + 3  # empty batches not run
        for got, expected in zip(skipped, run):
            np.testing.assert_array_equal(got, expected)


def test_denoise_skipping_constant_batches_changes_no_value(tmp_path, monkeypatch):
    """A chromosome with a 3.5 Mb stretch without insertions (like an unassembled arm), denoised by the bundled
    counts model with 2 threads: the same float32 values whether constant batches are skipped or run, the
    skipped windows counted in the provenance; a batch of one non-zero constant is skipped exactly too."""
    import json

    model = Path(__file__).resolve().parents[1] / "registry" / "models" / "atac-denoiser-counts.onnx"
    sizes = {"chr1": 6_000_000}
    positions = write_insertions(tmp_path / "all.bed.gz", sizes, 20_000)["chr1"]
    positions = positions[(positions < 1_000_000) | (positions >= 4_500_000)]
    with gzip.open(tmp_path / "ins.bed.gz", "wt") as out:
        out.write("".join(f"chr1\t{p}\t{p + 1}\t.\t0\t+\n" for p in positions))
    runs = {}
    for skip in (False, True):  # skipping (the default) last
        monkeypatch.setattr(OnnxDenoiser, "skip_constant", skip)
        out = denoise(tmp_path / "ins.bed.gz", model, sizes, tmp_path / f"skip{skip}", batch_size=8, threads=2,
                      progress=False, library_size=1e6)
        record = json.loads(Path(out["provenance"]).read_text())
        windows = record["windows"]
        assert record["graph"]["bins_predicted_per_window"] == 3634
        with pyBigWig.open(out["denoised"]) as bw, pyBigWig.open(out["peakprob"]) as pp:
            runs[skip] = windows, [np.array(f.values("chr1", 0, sizes["chr1"]), np.float32) for f in (bw, pp)]
    (skipped, with_skip), (not_skipped, without) = runs[True], runs[False]
    n_windows = -(-240_000 // 3634)  # 6 Mb of 25 bp bins, 3,634 predicted per window (widened: fast_graph)
    assert not_skipped == {"run": n_windows, "skipped_constant": 0}
    assert skipped["run"] + skipped["skipped_constant"] == n_windows and skipped["skipped_constant"] >= 24
    for got, expected in zip(with_skip, without):
        np.testing.assert_array_equal(got, expected)

    denoiser = OnnxDenoiser(model, threads=2)
    windows = np.full((8, denoiser.contract.window_bins), 0.5, np.float32)
    skipped_signal = denoiser.predict(windows, 8)
    assert denoiser.windows_skipped == 8 and denoiser.windows_run == 0
    for got, expected in zip(skipped_signal, denoiser.predict(windows, 8, skip_constant=False)):
        np.testing.assert_array_equal(got, expected)
    windows[3, 100] = 0.25  # one bin off the constant: run
    denoiser.predict(windows, 8)
    assert denoiser.windows_run == 16


class InlineWriter:
    """The writers called in the submitting thread, as before WriterThread: the reference for the threaded run."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def submit(self, fn, *args):
        fn(*args)


def test_an_insertions_input_is_parsed_once_and_its_spill_removed(work, monkeypatch, tmp_path):
    """The first pass keeps each chromosome's sorted insertions in a temporary folder (under TMPDIR) which the
    denoising pass reads back: the input is parsed once, every chromosome is denoised, and the folder is gone."""
    import tempfile

    import atacdenoise.io.reads as reads

    parsed, parse = [], reads.iter_insertions

    def counted(*args, **kwargs):
        parsed.append(args[0])
        return parse(*args, **kwargs)

    monkeypatch.setattr(reads, "iter_insertions", counted)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = denoise(work["insertions"], work["model"], SIZES, work["root"] / "once" / "s", genome="hg19",
                  progress=False)
    assert parsed == [work["insertions"]]
    with pyBigWig.open(str(out["denoised"])) as bw:
        assert all(bw.stats(chrom, 0, length, type="max")[0] > 0 for chrom, length in SIZES.items())
    assert list(tmp_path.iterdir()) == []


def small_chunks(monkeypatch):
    """One batch of 4 windows per chunk: 29 chunks on chr1 and 15 on chr2, so the writer queue fills up."""
    import atacdenoise.denoise.run as run

    monkeypatch.setattr(run, "CHUNK_BATCHES", 1)
    return {"batch_size": 4, "genome": "hg19", "progress": False, "bedgraph": True}


def test_writing_on_the_writer_thread_gives_the_files_of_writing_inline(work, monkeypatch):
    import atacdenoise.io.writer_thread as writer_thread

    options = small_chunks(monkeypatch)
    threaded = denoise(work["insertions"], work["model"], SIZES, work["root"] / "threaded" / "s", **options)
    monkeypatch.setattr(writer_thread, "WriterThread", InlineWriter)
    inline = denoise(work["insertions"], work["model"], SIZES, work["root"] / "inline" / "s", **options)
    for key in ("denoised", "peakprob", "denoised_bedgraph", "peakprob_bedgraph", "peaks", "peaks_bigbed"):
        assert Path(threaded[key]).read_bytes() == Path(inline[key]).read_bytes(), key
    assert Path(threaded["peaks"]).read_text().count("\n") > 3


@pytest.mark.parametrize("failing_chunk", [0, 5, 28, 43])  # the first, one amid chr1, the last of chr1, the last
def test_an_error_on_the_writer_thread_is_raised_as_itself_at_once_and_leaves_the_earlier_set(work, monkeypatch,
                                                                                               failing_chunk):
    """A full disk found by the peakprob bigWig writer (on the writer thread) of one chunk: that very
    NoSpaceLeft is raised by denoise, after at most 2 more chunks were run, and the earlier set at the same
    prefix is left byte for byte, with no temporary beside it."""
    import threading

    from atacdenoise.io.atomic import no_space_left
    from atacdenoise.io.bigwig_writer import BigWigWriter

    options = small_chunks(monkeypatch)
    folder = work["root"] / f"full{failing_chunk}"
    denoise(work["insertions"], work["model"], SIZES, folder / "s", **options)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert len(before) == 8  # 4 + 2 bedGraphs + bigBed + IGV session

    checks, injected, predicted, predict, add = [], [], [], OnnxDenoiser.predict, BigWigWriter.add

    def counted_predict(self, *args):
        predicted.append(1)
        return predict(self, *args)

    def add_until_full(self, *args):  # the denoised and the peakprob writer are given each chunk in turn
        assert threading.current_thread() is not threading.main_thread()
        checks.append(self.path)
        if len(checks) == 2 * failing_chunk + 2:
            injected.append(no_space_left(self.path))
            raise injected[0]
        return add(self, *args)

    monkeypatch.setattr(OnnxDenoiser, "predict", counted_predict)
    monkeypatch.setattr(BigWigWriter, "add", add_until_full)
    with pytest.raises(InputError) as raised:
        denoise(work["insertions"], work["model"], SIZES, folder / "s", threshold=0.3, **options)
    assert raised.value is injected[0] and str(raised.value) == f"no space left on device writing {folder / 's.peakprob.bw'}"
    assert len(checks) == 2 * failing_chunk + 2  # the calls queued after the failing one were dropped
    assert failing_chunk + 1 <= len(predicted) <= failing_chunk + 3
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_the_writer_thread_drops_the_calls_after_a_failed_one_and_raises_its_error_on_leaving():
    import threading

    from atacdenoise.io.writer_thread import WriterThread

    go, done, error = threading.Event(), [], ValueError("bins out of order")

    def fail():
        raise error

    with pytest.raises(ValueError) as raised:
        with WriterThread(pending=3) as writing:
            writing.submit(go.wait)  # holds the thread until the next three calls are queued behind it
            writing.submit(done.append, 1)
            writing.submit(fail)
            writing.submit(done.append, 2)  # queued (once the thread took go.wait) before the failure
            go.set()
    assert raised.value is error and done == [1]
