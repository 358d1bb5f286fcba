"""The seed's Hilbert-2D network learns: the fixes found by benchmarks/diagnose_hilbert2d.py, kept honest.

It used to stay at the mean predictor's MSE whatever it was given (exp head
under MSE in original units with clipped SGD, and a dense readout that must
learn every output bin apart). These tests train tiny networks on simulated
data and compare them with the mean predictor and with each other.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from atacdenoise.models import build_model, hilbert2d  # noqa: E402
from atacdenoise.models.morphisms import apply_random_morphisms  # noqa: E402
from atacdenoise.search.candidate import SearchData, TrainSettings, train_child  # noqa: E402
from conftest import SMALL_TARGET as TARGET, SMALL_WINDOW as WINDOW  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def simulated(small_training_pairs):
    train, val = small_training_pairs
    mean_mse = float(np.mean((val["targets"].astype(np.float64) - train["targets"].mean()) ** 2))
    return SearchData.from_pairs(train, val, None, "cpu"), mean_mse


def per_bin_config(output: str = "exp") -> dict:
    config = hilbert2d.make_config([hilbert2d.conv_layer(8, 3), hilbert2d.conv_layer(8, 3, concat=0)], WINDOW, TARGET)
    config.update(readout="per-bin", output=output)
    return config


def train(config: dict, data: SearchData, loss: str, grad_clip: float, epochs: int = 6) -> dict:
    """Validation metrics of ``config`` trained the search's way, plus ``val_mse`` in original units."""
    torch.manual_seed(0)
    settings = TrainSettings(epochs=epochs, lr_max=0.05, lr_min=0.0, momentum=0.9, batch_size=32,
                             grad_clip=grad_clip, peak_weight=0.0, device="cpu", loss=loss)
    model, metrics = train_child(build_model(config), data, settings, seed=0)
    with torch.no_grad():
        signal, _ = model.eval()(data.val_x)
    return {**metrics, "val_mse": float(((signal - data.val_y) ** 2).mean())}


def test_a_per_bin_hilbert2d_beats_the_mean_predictor(simulated):
    data, mean_mse = simulated
    metrics = train(per_bin_config(), data, "log-mse+pearson", grad_clip=1.0)
    assert metrics["val_pearson"] > 0.5
    assert metrics["val_mse"] < 0.8 * mean_mse


def test_the_per_bin_readout_learns_far_more_than_the_seeds_dense_readout(simulated):
    data, _ = simulated
    dense = hilbert2d.make_config([hilbert2d.conv_layer(8, 3), hilbert2d.dense_layer(32)], WINDOW, TARGET)
    dense_pearson = train(dense, data, "log-mse+pearson", grad_clip=1.0)["val_pearson"]
    per_bin_pearson = train(per_bin_config(), data, "log-mse+pearson", grad_clip=1.0)["val_pearson"]
    assert per_bin_pearson > dense_pearson + 0.1


def test_morphisms_keep_a_per_bin_model_a_per_bin_model_with_the_same_function():
    torch.manual_seed(0)
    model = build_model(per_bin_config()).eval()
    x = torch.rand(3, WINDOW) * 20
    rng = np.random.default_rng(0)
    for _ in range(8):
        child, names = apply_random_morphisms(model, rng, 2)
        child.eval()
        assert child.readout == "per-bin" and not list(child.dense)
        with torch.no_grad():
            torch.testing.assert_close(child(x)[0], model(x)[0], rtol=1e-4, atol=1e-4, msg=str(names))


@pytest.mark.parametrize("config, problem", [
    ({"readout": "pooled"}, "'readout' must be one of"),
    ({"readout": "per-bin", "layers": [hilbert2d.conv_layer(4, 3), hilbert2d.dense_layer(8)]},
     "per-bin readout takes no dense layers"),
    ({"output": "relu"}, "'output' must be one of"),
])
def test_bad_readout_and_output_settings_are_refused(config, problem):
    base = hilbert2d.make_config([hilbert2d.conv_layer(4, 3)], WINDOW, TARGET)
    with pytest.raises(ValueError, match=problem):
        build_model({**base, **config})


def test_a_linear_output_can_dip_below_zero_and_the_exp_output_cannot():
    torch.manual_seed(1)
    x = torch.rand(4, WINDOW) * 5
    linear = build_model(per_bin_config("linear"))
    torch.nn.init.constant_(linear.signal_head.bias, -3.0)
    assert float(linear(x)[0].min()) < 0
    assert float(build_model(per_bin_config())(x)[0].min()) > 0

