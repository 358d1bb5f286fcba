"""Load-time graph rewrites (denoise/fast_graph.py): the same values as the graph as exported, or not used."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import pyBigWig
import pytest

from atacdenoise.denoise import fast_graph
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
    outputs = denoise(root / "ins.bed.gz", COUNTS, SIZES, root / "exported", progress=False, fast_graph=False)
    return {"root": root, "outputs": outputs, "values": tracks(outputs)}


def test_widening_alone_gives_the_exported_graphs_values_bit_for_bit(exported, monkeypatch):
    monkeypatch.setattr(fast_graph, "conv1d_as_conv2d", lambda graph: None)
    outputs = denoise(exported["root"] / "ins.bed.gz", COUNTS, SIZES, exported["root"] / "widened", progress=False)
    record = json.loads(Path(outputs["provenance"]).read_text())
    assert record["graph"] == {"rewrites": ["widened: 3634 of 4096 bins predicted per window"],
                               "bins_predicted_per_window": 3634}
    before = json.loads(Path(exported["outputs"]["provenance"]).read_text())
    assert before["graph"] == {"rewrites": [], "bins_predicted_per_window": 1024}
    assert record["windows"]["run"] * 3 < before["windows"]["run"]  # 3.5x fewer windows
    for got, expected in zip(tracks(outputs), exported["values"]):
        np.testing.assert_array_equal(got, expected)
    assert Path(outputs["peaks"]).read_bytes() == Path(exported["outputs"]["peaks"]).read_bytes()


def test_both_rewrites_give_the_exported_values_to_float_rounding(exported):
    outputs = denoise(exported["root"] / "ins.bed.gz", COUNTS, SIZES, exported["root"] / "fast", progress=False)
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
