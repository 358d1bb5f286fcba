"""The three input layouts of the seed's Figure 4: row-major vs Hilbert images, the 1D model, the benchmark."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from atacdenoise.models import build_model, count_parameters  # noqa: E402
from atacdenoise.models import hilbert2d, layouts  # noqa: E402
from atacdenoise.tracks.hilbert import index_to_xy, to_grid  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WINDOW, TARGET, SIDE = 256, 64, 16

torch.set_num_threads(1)


def hot_window(position: int, n: int = 1) -> torch.Tensor:
    x = torch.zeros(n, WINDOW)
    x[:, position] = 5.0
    return x


def model_for(layout: str, kernel: int = 3, filters: int = 4, units: int = 8):
    torch.manual_seed(0)
    return build_model(layouts.layout_config(layout, kernel, filters, units, WINDOW, TARGET))


# ---------------------------------------------------------------- row-major vs Hilbert

@pytest.mark.parametrize("position", [0, 1, 17, 100, 255])
def test_a_hot_bin_lands_on_the_row_major_or_the_hilbert_cell(position):
    rowmajor, hilbert = model_for("2d"), model_for("hilbert")
    x = hot_window(position)
    row_grid, curve_grid = rowmajor.to_grid(x)[0, 0], hilbert.to_grid(x)[0, 0]
    cx, cy = index_to_xy(np.array([position]), 4)
    assert torch.nonzero(row_grid).tolist() == [[position // SIDE, position % SIDE]]
    assert torch.nonzero(curve_grid).tolist() == [[int(cy[0]), int(cx[0])]]


def test_rowmajor_and_hilbert_differ_only_in_the_permutation():
    rowmajor, hilbert = model_for("2d"), model_for("hilbert")
    rowmajor.load_state_dict(hilbert.state_dict())
    x = torch.rand(3, WINDOW) * 4
    # Feeding the row-major model the window already laid out along the curve gives the Hilbert model's output.
    reordered = torch.from_numpy(to_grid(x.numpy()).reshape(3, WINDOW).copy())
    for got, expected in zip(rowmajor(reordered), hilbert(x)):
        torch.testing.assert_close(got, expected)
    assert not torch.allclose(rowmajor(x)[0], hilbert(x)[0])  # the layout does change what the network sees


def test_configs_without_layout_stay_hilbert_and_round_trip():
    plain = hilbert2d.make_config([hilbert2d.conv_layer(4, 3), hilbert2d.dense_layer(8)], WINDOW, TARGET)
    model = build_model(plain)
    assert "layout" not in model.to_config()
    explicit = build_model({**plain, "layout": "hilbert"})
    assert torch.equal(model.grid_order, explicit.grid_order)
    rowmajor = build_model(layouts.layout_config("2d", 3, 4, 8, WINDOW, TARGET))
    assert rowmajor.to_config()["layout"] == "rowmajor"
    assert build_model(rowmajor.to_config()).to_config() == rowmajor.to_config()
    assert torch.equal(rowmajor.grid_order, torch.arange(WINDOW))
    with pytest.raises(ValueError, match="layout"):
        build_model({**plain, "layout": "zigzag"})


# ---------------------------------------------------------------- the 1D model

def test_conv1d_model_honours_the_contract_and_round_trips():
    model = model_for("1d", kernel=5, filters=4, units=8)
    config = model.to_config()
    assert config["space"] == "conv1d" and config["layers"][0]["kernel"] == 25  # 5 x 5 weights, as in 2D
    signal, logits = model(torch.rand(2, WINDOW) * 10)
    assert signal.shape == logits.shape == (2, TARGET) and signal.dtype == torch.float32
    assert bool((signal >= 0).all()) and bool(torch.isfinite(logits).all())
    rebuilt = build_model(config)
    assert rebuilt.to_config() == config
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, WINDOW)
    for got, expected in zip(rebuilt(x), model(x)):
        torch.testing.assert_close(got, expected)


def test_every_layout_of_a_draw_has_the_same_parameter_count():
    for kernel, filters, units in [(3, 4, 8), (5, 8, 16), (7, 2, 4)]:
        counts = {layout: count_parameters(model_for(layout, kernel, filters, units)) for layout in layouts.LAYOUTS}
        assert len(set(counts.values())) == 1, counts


def test_conv1d_sees_only_kernel_squared_neighbouring_bins():
    model = model_for("1d", kernel=3)  # a 9-bin kernel: reach 4 bins either side
    with torch.no_grad():
        features = torch.relu(model.conv(hot_window(100)[:, None, None, :]))[0, :, 0]
        baseline = torch.relu(model.conv(torch.zeros(1, 1, 1, WINDOW)))[0, :, 0]
    changed = torch.nonzero((features != baseline).any(dim=0)).flatten()
    assert changed.min() >= 96 and changed.max() <= 104 and len(changed) > 0


@pytest.mark.parametrize("layers, problem", [
    ([{"type": "conv", "filters": 4, "kernel": 4}, {"type": "dense", "units": 8}], "odd"),
    ([{"type": "dense", "units": 8}], "one conv layer followed by one dense"),
    ([{"type": "conv", "filters": 0, "kernel": 3}, {"type": "dense", "units": 8}], "filters"),
])
def test_bad_conv1d_configs_are_refused(layers, problem):
    with pytest.raises(ValueError, match=problem):
        build_model({"space": "conv1d", "window_bins": WINDOW, "target_bins": TARGET, "layers": layers})


# ---------------------------------------------------------------- the benchmark

def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_input_layouts", REPO / "benchmarks" / "bench_input_layouts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_end_to_end_on_a_tiny_simulated_budget(capsys):
    bench = load_benchmark()
    summary = bench.main(["--data", "sim", "--representation", "coverage", "--draws", "2", "--epochs", "1", "--train-windows", "64",
                          "--window-bins", str(WINDOW), "--target-bins", str(TARGET), "--sim-chrom-length", "200000",
                          "--sim-fragments", "20000", "--threads", "1", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert set(summary) == set(layouts.LAYOUTS)
    for layout in layouts.LAYOUTS:
        row = [line for line in printed.splitlines() if line.startswith(f"| {layouts.LAYOUT_LABELS[layout]} |")]
        assert len(row) == 1, printed
        assert summary[layout]["best_mse"] <= summary[layout]["mean_mse"]
    assert "budget: 2 draws x 1 epochs" in printed and "simulated" in printed
    assert "linear output, gradient clipping off" in printed  # the seed's training by default
    assert "the seed's (10 draws x 20 epochs" in printed and "would take about" in printed
    draw_rows = [line for line in printed.splitlines() if line[:4] in ("| 1 ", "| 2 ")]
    assert len(draw_rows) == 2  # one per draw, every layout's MSE in it


def test_every_layout_trains_the_same_draws_with_the_same_seeds(monkeypatch, capsys):
    bench = load_benchmark()
    calls = []

    def fake_train(layout, draw_seed, arch, data, settings, output):
        calls.append((layout, draw_seed, tuple(arch.values())))
        return None, {"val_loss": float(draw_seed % 97), "val_pearson": 0.5, "seconds": 0.0}

    monkeypatch.setattr(bench, "train_draw", fake_train)
    args = bench.parse_args(["--draws", "5", "--epochs", "3"])
    results = bench.run(args, data=None, device="cpu")
    capsys.readouterr()
    per_layout = {layout: [(s, a) for l, s, a in calls if l == layout] for layout in layouts.LAYOUTS}
    assert len(calls) == 15 and len({tuple(v) for v in per_layout.values()}) == 1  # identical draw lists
    assert len({s for _, s, _ in calls}) == 5  # a different seed per draw
    for _, _, (kernel, filters, units) in calls:
        assert kernel in hilbert2d.SEED_KERNELS and filters in hilbert2d.SEED_FILTERS
        assert units in hilbert2d.SEED_HIDDEN_UNITS
    summary = bench.summarise(results["hilbert"])
    assert summary["mean_mse"] == pytest.approx(np.mean([s % 97 for s, _ in per_layout["hilbert"]]))
