"""A freshly trained peak head must rank peaks above background, not below.

The demo's report showed peak probability upside down (AUROC 0.02 against the
simulated truth). The cause: a fresh head starts at probability 0.5, BCE first
pushes every logit down, and with ~2 % of bins in peaks that push acts through
the weights on the features most active in peaks. The search now starts every
fresh peak head at the labels' base rate (``models.common.set_peak_prior``).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from atacdenoise.metrics import auroc  # noqa: E402
from atacdenoise.models import build_model, dilated1d  # noqa: E402
from atacdenoise.models.common import set_peak_prior  # noqa: E402
from atacdenoise.search.history import load_search_model  # noqa: E402
from atacdenoise.search.candidate import SearchData, TrainSettings, train_child  # noqa: E402
from atacdenoise.search.nash import run_search  # noqa: E402
from conftest import SMALL_TARGET as TARGET, SMALL_WINDOW as WINDOW  # noqa: E402

torch.set_num_threads(1)


def val_auroc(model, data: SearchData) -> float:
    with torch.no_grad():
        _, logits = model.eval()(data.val_x)
    return auroc(logits.numpy().ravel(), data.val_peaks.numpy().ravel())


def briefly_trained(data: SearchData, seed: int, prior: bool):
    torch.manual_seed(seed)
    model = build_model(dilated1d.random_initial_config(np.random.default_rng(seed), WINDOW, TARGET))
    if prior:
        set_peak_prior(model, float(data.train_peaks.mean()))
    settings = TrainSettings(epochs=2, lr_max=0.05, lr_min=0.0, momentum=0.9, batch_size=32, grad_clip=1.0,
                             peak_weight=1.0, device="cpu", loss="log-mse")
    return train_child(model, data, settings, seed)[0]


def test_the_prior_starts_the_head_at_the_base_rate():
    model = build_model(dilated1d.random_initial_config(np.random.default_rng(0), WINDOW, TARGET))
    set_peak_prior(model, 0.02)
    with torch.no_grad():
        model.peak_head.weight.zero_()
        _, logits = model(torch.rand(2, WINDOW))
    assert torch.allclose(torch.sigmoid(logits), torch.full_like(logits, 0.02), atol=1e-6)


def test_without_the_prior_a_briefly_trained_head_is_upside_down_and_with_it_not(small_training_pairs):
    data = SearchData.from_pairs(*small_training_pairs, None, "cpu")
    for seed in (0, 1):
        assert val_auroc(briefly_trained(data, seed, prior=False), data) < 0.2  # what the demo showed
        assert val_auroc(briefly_trained(data, seed, prior=True), data) > 0.9


def test_the_search_starts_its_random_models_with_the_prior(small_training_pairs, tmp_path):
    from atacdenoise.search.data import save_pairs

    train, val = small_training_pairs
    save_pairs(tmp_path / "train.npz", train)
    save_pairs(tmp_path / "val.npz", val)
    run_search(tmp_path / "train.npz", tmp_path / "val.npz", tmp_path / "search", space="dilated1d", iterations=0, initial_random_draws=1,
               initial_epochs=2, loss="log-mse", device="cpu", progress=False, mirror=False)
    data = SearchData.from_pairs(train, val, None, "cpu")
    assert val_auroc(load_search_model(tmp_path / "search"), data) > 0.9  # 0.02 before the fix
