"""Model shapes, the Hilbert layout inside hilbert2d, configs, losses, training and ONNX export."""

import io
import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from atacdenoise.models import build_model, count_parameters, default_config, random_initial_config
from atacdenoise.models import atacworks, dilated1d, hilbert2d
from atacdenoise.models.losses import atacworks_loss, denoise_loss, pearson_per_row
from atacdenoise.tracks.hilbert import index_to_xy, to_grid

torch.set_num_threads(1)

WINDOW, TARGET = 256, 64  # 16 x 16 Hilbert image


def tiny_configs() -> dict[str, dict]:
    return {
        "hilbert2d": hilbert2d.seed_final_config(WINDOW, TARGET, filters=4, units=16),
        "hilbert2d-residual": hilbert2d.make_config([hilbert2d.conv_layer(4, 3), hilbert2d.residual_layer(4, 3),
                                                     hilbert2d.conv_layer(4, 5, concat=1)], WINDOW, TARGET),
        "dilated1d": dilated1d.make_config(8, 5, [dilated1d.residual_layer(5, 2)], WINDOW, TARGET),
        # 8 channels: with fewer, AtacWorks' bias-free ReLU regressor is often dead at init (as published).
        "atacworks": atacworks.make_config(WINDOW, TARGET, channels=8, blocks=2, kernel=5, dilation=2,
                                           class_channels=8, class_blocks=2, class_kernel=5, class_dilation=2),
    }


@pytest.fixture(params=list(tiny_configs()))
def tiny_config(request) -> dict:
    return tiny_configs()[request.param]


def signal_batch(n: int, length: int = WINDOW, seed: int = 0) -> torch.Tensor:
    """Sparse, coverage-like windows: mostly zeros with a few bumps."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(0.3, 10.0, (n, length)) * (rng.random((n, length)) < 0.3)
    return torch.tensor(x, dtype=torch.float32)


# ---------------------------------------------------------------- shapes and configs

def test_output_shapes_and_units(tiny_config):
    model = build_model(tiny_config)
    signal, logits = model(signal_batch(3))
    assert signal.shape == logits.shape == (3, TARGET)
    assert signal.dtype == logits.dtype == torch.float32
    assert torch.all(signal >= 0) and torch.isfinite(signal).all() and torch.isfinite(logits).all()


@pytest.mark.parametrize("space", ["hilbert2d", "dilated1d", "atacworks"])
def test_default_configs_follow_the_seed_geometry(space):
    config = default_config(space)
    model = build_model(config).eval()
    with torch.no_grad():
        signal, logits = model(signal_batch(1, 4096))
    assert (config["window_bins"], config["target_bins"]) == (4096, 1024)
    assert signal.shape == logits.shape == (1, 1024)


def test_atacworks_default_is_the_published_architecture():
    model = build_model(default_config("atacworks"))
    convs = [m for m in model.res_blocks.modules() if isinstance(m, torch.nn.Conv1d) and m.kernel_size[0] > 1]
    assert len(model.res_blocks) == 5 and len(model.class_blocks) == 2
    assert len(convs) == 15
    assert all(c.kernel_size == (51,) and c.dilation == (8,) and c.out_channels == 15 for c in convs)


def test_config_round_trips_through_json_with_weights(tiny_config):
    model = build_model(tiny_config).eval()
    text = json.dumps(model.to_config())
    rebuilt = build_model(json.loads(text)).eval()
    assert rebuilt.to_config() == model.to_config() == tiny_config
    rebuilt.load_state_dict(model.state_dict())
    x = signal_batch(2)
    with torch.no_grad():
        for a, b in zip(model(x), rebuilt(x)):
            torch.testing.assert_close(a, b)


def test_random_initial_config_is_the_seed_search_space():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(30):
        config = random_initial_config("hilbert2d", rng)
        conv, dense = config["layers"]
        assert conv["kernel"] in hilbert2d.SEED_KERNELS and conv["filters"] in hilbert2d.SEED_FILTERS
        assert dense == {"type": "dense", "units": dense["units"]} and dense["units"] in hilbert2d.SEED_HIDDEN_UNITS
        json.dumps(config)  # plain JSON, no numpy scalars
        seen.add((conv["kernel"], conv["filters"], dense["units"]))
    assert len(seen) > 5


@pytest.mark.parametrize("bad, message", [
    ({"space": "transformer"}, "unknown space"),
    ({"space": "hilbert2d", "window_bins": 200, "target_bins": 64, "layers": []}, "power of 4"),
    ({"space": "hilbert2d", "window_bins": 256, "target_bins": 512, "layers": []}, "exceeds"),
    (hilbert2d.make_config([hilbert2d.conv_layer(4, 4)], 256, 64), "odd"),
    (hilbert2d.make_config([hilbert2d.conv_layer(4, 3, concat=0)], 256, 64), "earlier feature"),
    (hilbert2d.make_config([hilbert2d.dense_layer(8), hilbert2d.conv_layer(4, 3)], 256, 64), "followed by dense"),
    (dilated1d.make_config(0, 5, window_bins=256, target_bins=64), "channels"),
])
def test_bad_configs_name_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        build_model(bad)


# ---------------------------------------------------------------- the Hilbert layout

def test_hilbert2d_places_each_bin_on_its_curve_cell():
    model = build_model(hilbert2d.seed_final_config(WINDOW, TARGET, filters=2, units=4))
    bins = np.array([0, 1, 2, 3, 17, 100, 255])
    hot = torch.zeros(len(bins), WINDOW)
    hot[torch.arange(len(bins)), torch.from_numpy(bins)] = 1.0
    grid = model.to_grid(hot)[:, 0]
    xs, ys = index_to_xy(bins, 4)
    for i in range(len(bins)):
        assert grid[i, ys[i], xs[i]] == 1.0 and grid[i].sum() == 1.0
    values = signal_batch(3)
    np.testing.assert_array_equal(model.to_grid(values)[:, 0].numpy(), to_grid(values.numpy()))


def test_dilated1d_heads_read_the_centre_bins():
    """The output at centre bin i depends on input bin flank + i, not on far-away bins."""
    config = dilated1d.make_config(4, 3, [], WINDOW, TARGET)  # receptive field 3 bins
    model = build_model(config).double()
    x = signal_batch(1).double()
    y = x.clone()
    flank = (WINDOW - TARGET) // 2
    y[0, :flank - 1] += 7.0  # outside the receptive field of every centre bin
    torch.testing.assert_close(model(x)[1], model(y)[1])
    y[0, flank + 10] += 7.0
    changed = (model(x)[1] - model(y)[1]).abs() > 0
    assert changed[0, 9:12].any() and not changed[0, :8].any()


def test_dilated1d_cropped_trunk_equals_the_whole_window():
    """The trunk runs only on the centre plus its receptive field: outputs equal the full-window computation."""
    blocks = [dilated1d.residual_layer(5, 4), dilated1d.residual_layer(3, 2)]
    model = build_model(dilated1d.make_config(3, 7, blocks, 256, 64)).double()
    assert model.receptive_field == 3 + 8 + 8 + 2 + 2
    torch.manual_seed(0)
    for parameter in model.parameters():  # random weights everywhere, heads included
        torch.nn.init.normal_(parameter, std=0.5)
    x = signal_batch(4).double()
    h = torch.relu(model.stem(torch.log1p(x).unsqueeze(1)))  # the uncropped computation, by hand
    for block in model.blocks:
        h = block(h)
    h = model.crop_centre(h)
    signal, logits = model(x)
    torch.testing.assert_close(logits, model.peak_head(h).squeeze(1), rtol=0, atol=1e-12)
    torch.testing.assert_close(signal, torch.exp(model.signal_head(h).squeeze(1)), rtol=1e-12, atol=0)


# ---------------------------------------------------------------- losses

def test_denoise_loss_is_mse_plus_weighted_bce():
    g = torch.Generator().manual_seed(0)
    signal, target = torch.rand(4, 16, generator=g) * 5, torch.rand(4, 16, generator=g) * 5
    logits, labels = torch.randn(4, 16, generator=g), (torch.rand(4, 16, generator=g) > 0.5).float()
    mse = ((signal - target) ** 2).mean()
    bce = -(labels * torch.log(torch.sigmoid(logits)) + (1 - labels) * torch.log(1 - torch.sigmoid(logits))).mean()
    torch.testing.assert_close(denoise_loss(signal, target), mse)
    torch.testing.assert_close(denoise_loss(signal, target, logits, labels, peak_weight=0.5), mse + 0.5 * bce)
    torch.testing.assert_close(denoise_loss(signal, target, logits, labels, log_space=True),
                               ((torch.log1p(signal) - torch.log1p(target)) ** 2).mean() + bce)


def test_named_losses_add_their_terms():
    """'log-mse+pearson+mse' = log-MSE + (1 - Pearson per window) + 0.0005 * MSE in original units + BCE."""
    from atacdenoise.search.candidate import LOSSES, TrainSettings, loss_function

    g = torch.Generator().manual_seed(1)
    signal, target = torch.rand(3, 32, generator=g) * 50, torch.rand(3, 32, generator=g) * 50
    logits, labels = torch.randn(3, 32, generator=g), (torch.rand(3, 32, generator=g) > 0.5).float()
    log_mse = ((torch.log1p(signal) - torch.log1p(target)) ** 2).mean()
    one_minus_r = (1 - pearson_per_row(signal, target)).mean()
    mse = ((signal - target) ** 2).mean()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    expected = {"mse": mse + bce, "log-mse": log_mse + bce, "log-mse+pearson": log_mse + one_minus_r + bce,
                "log-mse+pearson+mse": log_mse + one_minus_r + 0.0005 * mse + bce}
    for name, value in expected.items():
        settings = TrainSettings(1, 0.05, 0.0, 0.9, 8, 1.0, 1.0, "cpu", name)
        torch.testing.assert_close(loss_function(settings)(signal, target, logits, labels), value, msg=name)
    assert set(expected) | {"atacworks"} == set(LOSSES)


def test_pearson_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 40)), rng.normal(size=(5, 40))
    expected = [np.corrcoef(a[i], b[i])[0, 1] for i in range(5)]
    np.testing.assert_allclose(pearson_per_row(torch.tensor(a), torch.tensor(b)).numpy(), expected, rtol=1e-6)


def test_atacworks_loss_on_known_inputs():
    target = torch.tensor([[0.0, 1.0, 4.0, 2.0], [3.0, 0.0, 0.0, 5.0]])
    labels = (target > 1.5).float()
    confident = (labels * 2 - 1) * 40.0  # logits that are right with near certainty
    perfect = atacworks_loss(target, target, confident, labels)
    assert perfect.item() == pytest.approx(0.0, abs=1e-6)
    # Anti-correlated prediction: 1 - (-1) = 2, plus the small MSE term.
    mirrored = target.max(dim=1, keepdim=True).values - target
    expected = 0.0005 * F.mse_loss(mirrored, target) + 2.0
    torch.testing.assert_close(atacworks_loss(mirrored, target, confident, labels), expected)
    # BCE of zero logits is log 2 whatever the labels.
    torch.testing.assert_close(atacworks_loss(target, target, torch.zeros_like(target), labels),
                               torch.tensor(np.log(2.0), dtype=torch.float32), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- training

def test_tiny_models_overfit_a_tiny_batch(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config)
    x = signal_batch(4)
    target = torch.relu(x[:, (WINDOW - TARGET) // 2:][:, :TARGET] * 2.0 - 1.0)
    labels = (target > 2.0).float()
    loss_fn = atacworks_loss if tiny_config["space"] == "atacworks" else denoise_loss
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        optimiser.zero_grad()
        signal, logits = model(x)
        loss = loss_fn(signal, target, logits, labels)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


# ---------------------------------------------------------------- ONNX

def test_onnx_export_matches_pytorch(tiny_config):
    ort = pytest.importorskip("onnxruntime")
    model = build_model(tiny_config).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (signal_batch(2),), buffer, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["signal", "peak_logits"],
                          dynamic_axes={name: {0: "batch"} for name in ("x", "signal", "peak_logits")})
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x = signal_batch(5, seed=3)  # another batch size than the one traced
    onnx_signal, onnx_logits = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        signal, logits = model(x)
    np.testing.assert_allclose(onnx_signal, signal.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(onnx_logits, logits.numpy(), atol=1e-4, rtol=1e-4)


def test_parameter_count_of_seed_initial_model():
    config = hilbert2d.make_config([hilbert2d.conv_layer(8, 5), hilbert2d.dense_layer(64)], WINDOW, TARGET)
    expected = (8 * 25 + 8) + (8 * WINDOW * 64 + 64) + 2 * (64 * TARGET + TARGET)
    assert count_parameters(build_model(config)) == expected
