"""Denoising faster: load-time graph rewrites (denoise/fast_graph.py), the same values as the graph as exported
or not used; and the int8 trunk (denoise/quantize.py), calibrated on the input, close to float32 or not used."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pyBigWig
import pytest

from atacdenoise.denoise import fast_graph
from atacdenoise.denoise import quantize as int8
from atacdenoise.denoise import run as denoise_run
from atacdenoise.denoise.onnx_runner import OnnxDenoiser
from atacdenoise.denoise.run import denoise
from test_denoise import write_insertions

MODELS = Path(__file__).resolve().parents[1] / "registry" / "models"
COUNTS = MODELS / "atac-denoiser-counts.onnx"
SIZES = {"chr1": 3_000_000, "chr2": 1_234_567}


def tracks(outputs: dict) -> list[np.ndarray]:
    values = []
    for key in ("denoised", "peakprob"):
        with pyBigWig.open(outputs[key]) as bw:
            values += [np.nan_to_num(np.array(bw.values(c, 0, n), np.float32)) for c, n in SIZES.items()]
    return values


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """The bundled counts model denoising a synthetic library as exported (fast_graph=False)."""
    root = tmp_path_factory.mktemp("fast_graph")
    write_insertions(root / "ins.bed.gz", SIZES, 15_000)
    outputs = denoise(root / "ins.bed.gz", COUNTS, SIZES, root / "exported", progress=False, fast_graph=False,
                      precision="float32", exact_values=True)
    return {"root": root, "outputs": outputs, "values": tracks(outputs)}


def test_widening_alone_gives_the_exported_graphs_values_bit_for_bit(exported, monkeypatch):
    monkeypatch.setattr(fast_graph, "conv1d_as_conv2d", lambda graph: None)
    outputs = denoise(exported["root"] / "ins.bed.gz", COUNTS, SIZES, exported["root"] / "widened", progress=False,
                      exact_values=True)
    record = json.loads(Path(outputs["provenance"]).read_text())
    assert record["graph"] == {"rewrites": ["widened: 3634 of 4096 bins predicted per window"],
                               "bins_predicted_per_window": 3634, "precision": {"mode": "float32"}}
    before = json.loads(Path(exported["outputs"]["provenance"]).read_text())
    assert before["graph"] == {"rewrites": [], "bins_predicted_per_window": 1024, "precision": {"mode": "float32"}}
    assert record["windows"]["run"] * 3 < before["windows"]["run"]  # 3.5x fewer windows
    for got, expected in zip(tracks(outputs), exported["values"]):
        np.testing.assert_array_equal(got, expected)
    assert Path(outputs["peaks"]).read_bytes() == Path(exported["outputs"]["peaks"]).read_bytes()


def test_both_rewrites_give_the_exported_values_to_float_rounding(exported):
    outputs = denoise(exported["root"] / "ins.bed.gz", COUNTS, SIZES, exported["root"] / "fast", progress=False,
                      exact_values=True)
    rewrites = json.loads(Path(outputs["provenance"]).read_text())["graph"]["rewrites"]
    assert rewrites == ["widened: 3634 of 4096 bins predicted per window", "Conv1d as Conv2d"]
    for got, expected in zip(tracks(outputs), exported["values"]):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(float(expected.max()), 1.0))
    peaks, before = (np.loadtxt(path, dtype=str) for path in (outputs["peaks"], exported["outputs"]["peaks"]))
    assert len(peaks) > 10 and (peaks[:, [0, 1, 2, 3, 9]] == before[:, [0, 1, 2, 3, 9]]).all()  # the same peaks
    np.testing.assert_allclose(peaks[:, 6].astype(float), before[:, 6].astype(float), rtol=1e-5)  # their mean


@pytest.mark.parametrize("name", ["atac-denoiser", "atac-denoiser-sacCer3"])
def test_models_with_genome_channels_and_a_sequence_tower_are_rewritten_too(name):
    """Annotation channels (atac-denoiser) and a learned sequence tower (sacCer3) in front of the trunk: both
    rewrites apply and pass their checks; the widened graph's centre is the exported one's window."""
    denoiser = OnnxDenoiser(MODELS / f"{name}.onnx")
    exported = OnnxDenoiser(MODELS / f"{name}.onnx")
    assert denoiser.optimise() == ["widened: 3634 of 4096 bins predicted per window", "Conv1d as Conv2d"]
    graph = onnx.load_from_string(denoiser.graph).graph
    assert {len(init.dims) for init in graph.initializer if init.name.endswith("weight/2d")} == {4}
    c = exported.contract
    rng = np.random.default_rng(1)
    windows = rng.random((4, c.input_channels, c.window_bins), dtype=np.float32)
    windows[:, 0] *= 20 * (rng.random((4, c.window_bins)) < 0.3)
    offset = (denoiser.target_bins - c.target_bins) // 2
    for got, expected in zip(denoiser.predict(windows), exported.predict(windows)):
        np.testing.assert_allclose(got[:, offset:offset + c.target_bins], expected, rtol=1e-5, atol=1e-5)


def test_a_2d_model_is_run_as_exported():
    denoiser = OnnxDenoiser(MODELS / "atac-denoiser-hilbert2d.onnx")
    assert denoiser.optimise() == [] and denoiser.target_bins == denoiser.contract.target_bins == 1024
    assert fast_graph.widen_graph(denoiser.graph, 4096, 1024) is None
    assert fast_graph.conv1d_as_conv2d(denoiser.graph) is None


def test_a_rewrite_that_fails_its_check_is_not_used(monkeypatch, caplog):
    monkeypatch.setattr(fast_graph, "check_widened", lambda *args, **kwargs: False)
    monkeypatch.setattr(fast_graph, "check_same_outputs", lambda *args, **kwargs: False)
    denoiser, exported = OnnxDenoiser(COUNTS), OnnxDenoiser(COUNTS)
    with caplog.at_level(logging.WARNING):
        assert denoiser.optimise() == []
    assert "failed the widening check" in caplog.text and "failed the Conv1d as Conv2d check" in caplog.text
    assert denoiser.target_bins == 1024 and denoiser.graph == COUNTS.read_bytes()
    windows = np.random.default_rng(2).gamma(0.3, 2.0, (3, 4096)).astype(np.float32)
    for got, expected in zip(denoiser.predict(windows), exported.predict(windows)):
        np.testing.assert_array_equal(got, expected)


def test_the_checks_catch_a_wrong_rewrite():
    """A widened graph whose outputs are one bin off, or a rewrite that changes a value by 1e-3, fails."""
    import onnxruntime as ort

    graph = COUNTS.read_bytes()
    widened = fast_graph.widen_graph(graph, 4096, 1024)
    assert widened is not None and widened.receptive_field == 231
    run = lambda g: (lambda s: lambda batch: s.run(None, {"x": np.ascontiguousarray(batch)}))(  # noqa: E731
        ort.InferenceSession(g, providers=["CPUExecutionProvider"]))
    original, wide = run(graph), run(widened.graph)
    assert fast_graph.check_widened(original, wide, 4096, 1024, widened.target_bins)
    shifted = lambda batch: [np.roll(out, 1, axis=-1) for out in wide(batch)]  # noqa: E731
    assert not fast_graph.check_widened(original, shifted, 4096, 1024, widened.target_bins)
    assert fast_graph.check_same_outputs(original, original, 4096)
    nudged = lambda batch: [out + 1e-3 * np.abs(out).max() for out in original(batch)]  # noqa: E731
    assert not fast_graph.check_same_outputs(original, nudged, 4096)


def provenance(outputs: dict) -> dict:
    return json.loads(Path(outputs["provenance"]).read_text())


@pytest.fixture(scope="module")
def int8_run(exported) -> dict:
    root = exported["root"]
    outputs = denoise(root / "ins.bed.gz", COUNTS, SIZES, root / "int8", progress=False, exact_values=True,
                      precision="int8")
    return {"outputs": outputs, "values": tracks(outputs)}


def test_int8_is_calibrated_on_the_input_and_close_to_float32(exported, int8_run):
    graph = provenance(int8_run["outputs"])["graph"]
    record = graph["precision"]
    assert record["mode"] == "int8" and record["agreement_pearson"] >= int8.MIN_AGREEMENT
    spread = sum(len(v) for v in int8.sample_places(SIZES, 4096, 25).values())  # the even ones calibrate
    assert record["check_windows"] == spread // 2
    assert 0 < record["calibration_windows"] - (spread - spread // 2) <= int8.PEAK_WINDOWS  # + the densest
    assert graph["rewrites"] == ["widened: 3634 of 4096 bins predicted per window"]  # no Conv2d for QDQ Convs
    for got, expected in zip(int8_run["values"], exported["values"]):
        assert np.corrcoef(got, expected)[0, 1] > 0.999 and not np.array_equal(got, expected)


def test_int8_of_one_chromosome_is_the_whole_runs(exported, int8_run):
    """Calibration windows come from the whole input whatever --chroms: a group gets the whole run's model."""
    outputs = denoise(exported["root"] / "ins.bed.gz", COUNTS, SIZES, exported["root"] / "int8_chr2",
                      progress=False, exact_values=True, precision="int8", chroms=["chr2"])
    assert provenance(outputs)["graph"] == provenance(int8_run["outputs"])["graph"]
    with pyBigWig.open(outputs["denoised"]) as bw:
        np.testing.assert_array_equal(np.nan_to_num(np.array(bw.values("chr2", 0, SIZES["chr2"]), np.float32)),
                                      int8_run["values"][1])


def test_int8_that_disagrees_with_float32_is_not_used(exported, monkeypatch, caplog):
    monkeypatch.setattr(int8, "MIN_AGREEMENT", 1.01)
    with caplog.at_level(logging.WARNING):
        outputs = denoise(exported["root"] / "ins.bed.gz", COUNTS, SIZES, exported["root"] / "refused",
                          progress=False, exact_values=True, precision="int8", fast_graph=False)
    record = provenance(outputs)["graph"]["precision"]
    assert record["mode"] == "float32" and 0.999 < record["agreement_pearson"] < 1.01
    assert "float32 is used" in caplog.text
    for got, expected in zip(tracks(outputs), exported["values"]):
        np.testing.assert_array_equal(got, expected)


def test_auto_precision_takes_int8_for_large_inputs_only(exported, monkeypatch):
    sample_places = int8.sample_places
    monkeypatch.setattr(int8, "sample_places", None)  # a genome under the threshold takes no calibration windows
    small = denoise(exported["root"] / "ins.bed.gz", COUNTS, SIZES, exported["root"] / "auto_small", progress=False)
    assert provenance(small)["graph"]["precision"] == {"mode": "float32"}
    monkeypatch.setattr(int8, "sample_places", sample_places)
    monkeypatch.setattr(denoise_run, "INT8_FROM_BP", sum(SIZES.values()))
    large = denoise(exported["root"] / "ins.bed.gz", COUNTS, SIZES, exported["root"] / "auto_large", progress=False)
    assert provenance(large)["graph"]["precision"]["mode"] == "int8"


def test_int8_from_a_bigwig_input(tmp_path):
    """A coverage bigWig gives its calibration windows from the file (read at the places, then scaled)."""
    length = SIZES["chr1"]
    positions = write_insertions(tmp_path / "ins.bed.gz", {"chr1": length}, 15_000)["chr1"]
    per_base = np.bincount(positions, minlength=length + 201).astype(float)
    per_base = np.convolve(per_base, np.ones(201))[100:100 + length]  # +-100 bp extended insertions
    with pyBigWig.open(str(tmp_path / "cov.bw"), "w") as bw:
        bw.addHeader([("chr1", length)])
        bw.addEntries("chr1", 0, values=per_base.tolist(), span=1, step=1)
    outputs = {fmt: denoise(tmp_path / name, COUNTS, {"chr1": length}, tmp_path / fmt, progress=False,
                            precision="int8") for fmt, name in (("bigwig", "cov.bw"), ("bed", "ins.bed.gz"))}
    records = [provenance(out)["graph"]["precision"] for out in outputs.values()]
    assert [r["mode"] for r in records] == ["int8", "int8"] and records[0]["calibration_windows"] > 50
