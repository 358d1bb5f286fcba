"""Every morphism preserves the network's function exactly, at every site, alone and chained."""

import json

import numpy as np
import pytest
import torch

from atacdenoise.models import build_model, count_parameters, dilated1d, hilbert2d
from atacdenoise.models import atacworks
from atacdenoise.models import morphisms as M

torch.set_num_threads(1)

WINDOW, TARGET = 64, 16  # 8 x 8 Hilbert image: tiny and fast


def hilbert_config() -> dict:
    """Every hilbert2d feature at once: a conv feeding a residual block, a concat of an
    intermediate map (so a widened map has two consumers), and two dense layers."""
    return hilbert2d.make_config([
        hilbert2d.conv_layer(3, 3),
        hilbert2d.residual_layer(4, 3),
        hilbert2d.conv_layer(4, 5),
        hilbert2d.conv_layer(3, 3, concat=1),
        hilbert2d.dense_layer(8),
        hilbert2d.dense_layer(6),
    ], WINDOW, TARGET)


def configs() -> dict[str, dict]:
    return {
        "hilbert2d": hilbert_config(),
        "hilbert2d-seed-initial": hilbert2d.make_config([hilbert2d.conv_layer(4, 3), hilbert2d.dense_layer(8)],
                                                        WINDOW, TARGET),
        # The last conv feeds a residual block that feeds the heads directly (no dense layer).
        "hilbert2d-no-dense": hilbert2d.make_config([hilbert2d.conv_layer(2, 3), hilbert2d.residual_layer(2, 3)],
                                                    WINDOW, TARGET),
        "dilated1d": dilated1d.make_config(4, 5, [dilated1d.residual_layer(3, 2), dilated1d.residual_layer(5, 4)],
                                           WINDOW, TARGET),
    }


APPLICABLE = {
    "hilbert2d": list(M.MORPHISMS),
    "hilbert2d-seed-initial": ["deepen_conv", "deepen_dense", "widen_conv", "widen_dense",
                               "add_skip_residual", "widen_kernel"],
    "hilbert2d-no-dense": ["deepen_conv", "widen_conv", "add_skip_residual", "widen_kernel"],
    "dilated1d": ["deepen_conv", "widen_conv", "widen_kernel"],
}
CASES = [(space, name) for space, names in APPLICABLE.items() for name in names]


def model_for(space: str, seed: int = 0) -> M.Denoiser:
    torch.manual_seed(seed)
    return build_model(configs()[space]).double().eval()


def inputs() -> list[torch.Tensor]:
    """Non-negative coverage-like windows, and general (also negative) inputs."""
    g = torch.Generator().manual_seed(1)
    sparse = torch.rand(4, WINDOW, generator=g, dtype=torch.float64) * 30
    sparse[torch.rand(4, WINDOW, generator=g) < 0.5] = 0
    return [sparse, torch.randn(4, WINDOW, generator=g, dtype=torch.float64) * 5]


def assert_same_function(old, new, atol=1e-5):
    with torch.no_grad():
        for x in inputs():
            for a, b in zip(old(x), new(x)):
                assert a.shape == b.shape
                torch.testing.assert_close(b, a, atol=atol, rtol=1e-5)


def sites(model, name):
    """Every explicit site of a morphism, as keyword arguments (all of them get tested)."""
    config = model.to_config()
    layers = config["layers"]
    if isinstance(model, M.Dilated1DNet):
        return {"deepen_conv": [{"position": p} for p in range(len(layers))],
                "widen_conv": [{}],
                "widen_kernel": [{"layer": i} for i in range(len(layers))]}[name]
    trunk, dense = hilbert2d.split_layers(config)
    convs = [b for b, layer in enumerate(trunk) if layer["type"] == "conv"]
    return {
        "deepen_conv": [{"position": p} for p in range(len(trunk) + 1)],
        "add_skip_residual": [{"position": p} for p in range(len(trunk) + 1)],
        "deepen_dense": [{"after": i} for i in range(len(dense))],
        "widen_dense": [{"layer": i} for i in range(len(dense))],
        "widen_conv": [{"block": b} for b in convs],
        "widen_kernel": [{"block": b} for b in range(len(trunk))],
        "add_skip_concat": [{"block": b, "source": s} for b in convs if b >= 1 and trunk[b]["concat"] is None
                            for s in range(b)],
    }[name]


@pytest.mark.parametrize("space, name", CASES)
def test_morphism_preserves_function_at_every_site(space, name):
    old = model_for(space)
    before = {k: v.clone() for k, v in old.state_dict().items()}
    rng = np.random.default_rng(0)
    assert sites(old, name), "every listed morphism must have a site here"
    for site in sites(old, name):
        new = M.MORPHISMS[name](old, rng, **site)
        assert new is not old and new.to_config() != old.to_config()
        assert next(new.parameters()).dtype == torch.float64 and not new.training
        assert count_parameters(new) > count_parameters(old)
        assert_same_function(old, new)
    # The parent is left untouched (the search keeps it as a candidate).
    for key, value in old.state_dict().items():
        assert torch.equal(value, before[key])


@pytest.mark.parametrize("space, name", CASES)
def test_random_site_preserves_function_and_config_round_trips(space, name):
    old = model_for(space, seed=3)
    new = M.MORPHISMS[name](old, np.random.default_rng(7))
    assert_same_function(old, new)
    config = json.loads(json.dumps(new.to_config()))
    rebuilt = build_model(config).double().eval()
    rebuilt.load_state_dict(new.state_dict())
    assert rebuilt.to_config() == new.to_config()
    assert_same_function(new, rebuilt, atol=0)


@pytest.mark.parametrize("space", list(APPLICABLE))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chained_random_morphisms_preserve_function(space, seed):
    old = model_for(space, seed)
    new, names = M.apply_random_morphisms(old, np.random.default_rng(seed), 5)
    assert len(names) == 5 and set(names) <= set(APPLICABLE[space]) | {"add_skip_concat"}
    assert_same_function(old, new)
    rebuilt = build_model(json.loads(json.dumps(new.to_config()))).double().eval()
    rebuilt.load_state_dict(new.state_dict())
    assert_same_function(new, rebuilt, atol=0)


def test_morphisms_are_reproducible_from_the_rng_seed():
    old = model_for("hilbert2d")
    a, names_a = M.apply_random_morphisms(old, np.random.default_rng(11), 4)
    b, names_b = M.apply_random_morphisms(old, np.random.default_rng(11), 4)
    assert names_a == names_b and a.to_config() == b.to_config()
    for (key, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), key


def test_float32_models_stay_float32_and_close():
    old = build_model(hilbert_config()).eval()
    new, _ = M.apply_random_morphisms(old, np.random.default_rng(5), 4)
    assert next(new.parameters()).dtype == torch.float32
    with torch.no_grad():
        x = inputs()[0].float()
        for a, b in zip(old(x), new(x)):
            torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- what each edit adds

def test_parameter_growth_matches_the_edit():
    old = model_for("hilbert2d")
    rng = np.random.default_rng(0)
    n = count_parameters(old)
    channels = old.feature_channels  # [1, 3, 3, 4, 3]

    new = M.deepen_conv(old, rng, position=2, kernel=5)
    assert count_parameters(new) - n == channels[2] * channels[2] * 25 + channels[2]
    assert new.to_config()["layers"][2] == hilbert2d.conv_layer(3, 5)
    assert new.to_config()["layers"][4]["concat"] == 1  # the concat source before the insert keeps its number

    new = M.deepen_conv(old, rng, position=0, kernel=3)
    assert new.to_config()["layers"][4]["concat"] == 2  # ... and one after it is renumbered
    assert count_parameters(new) - n == 1 * 1 * 9 + 1

    new = M.deepen_dense(old, rng, after=0)
    assert count_parameters(new) - n == 8 * 8 + 8

    new = M.widen_dense(old, rng, layer=1, width=10)  # 8 -> [6 -> 10] -> heads of 16
    assert count_parameters(new) - n == 4 * (8 + 1) + 4 * 2 * TARGET

    new = M.widen_kernel(old, rng, block=3)  # conv 3 reads 4 + 3 (concat) channels
    assert count_parameters(new) - n == 3 * 7 * (25 - 9)

    new = M.add_skip_residual(old, rng, position=3, kernel=3, hidden=5)
    assert count_parameters(new) - n == 2 * (4 * 5 * 9) + 5 + 4

    new = M.add_skip_concat(old, rng, block=2, source=0)
    assert count_parameters(new) - n == 4 * 1 * 25

    new = M.widen_conv(old, rng, block=0, width=5)  # feature 1 -> residual -> conv 2 and the concat of conv 3
    residual_growth = 2 * 2 * 4 * 9 + 2
    assert count_parameters(new) - n == 2 * 9 + 2 + residual_growth + 2 * 4 * 25 + 2 * 3 * 9
    assert new.feature_channels == [1, 5, 5, 4, 3]


def test_widen_replicates_units_and_splits_outgoing_weights():
    old = model_for("hilbert2d-seed-initial")  # conv(4) -> flatten -> dense(8)
    new = M.widen_conv(old, np.random.default_rng(0), block=0, width=6, split="equal")
    w_old, w_new = old.blocks[0].conv.weight, new.blocks[0].conv.weight
    assert torch.equal(w_new[:4], w_old)
    copied = [int(torch.nonzero((w_old == w_new[i]).flatten(1).all(1))[0]) for i in (4, 5)]
    # Flatten boundary: each channel owns a block of side*side inputs of the first dense layer.
    block = WINDOW
    d_old, d_new = old.dense[0].weight, new.dense[0].weight
    counts = np.bincount(list(range(4)) + copied, minlength=4)
    for c in range(4):
        torch.testing.assert_close(d_new[:, c * block:(c + 1) * block], d_old[:, c * block:(c + 1) * block] / counts[c])
    for i, c in zip((4, 5), copied):
        torch.testing.assert_close(d_new[:, i * block:(i + 1) * block], d_old[:, c * block:(c + 1) * block] / counts[c])
    assert_same_function(old, new)


def test_random_split_breaks_the_symmetry_of_copies():
    old = model_for("hilbert2d-seed-initial")
    new = M.widen_dense(old, np.random.default_rng(0), layer=0, width=16)
    shares = new.signal_head.weight[:, 8:] / old.signal_head.weight[:, new_copy_sources(old, new)]
    assert not torch.allclose(shares, torch.full_like(shares, 0.5))
    assert_same_function(old, new)


def new_copy_sources(old, new) -> list[int]:
    """Which old dense unit each new unit (8..15) copies, found from the incoming weights."""
    w_old, w_new = old.dense[0].weight, new.dense[0].weight
    return [int(torch.nonzero((w_old == w_new[i]).all(1))[0]) for i in range(8, 16)]


def test_not_applicable_is_reported():
    rng = np.random.default_rng(0)
    with pytest.raises(M.NotApplicable):
        M.widen_dense(model_for("hilbert2d-no-dense"), rng)
    with pytest.raises(M.NotApplicable):
        M.add_skip_concat(model_for("hilbert2d-seed-initial"), rng)
    with pytest.raises(M.NotApplicable):
        M.deepen_dense(model_for("dilated1d"), rng)
    baseline = build_model(atacworks.make_config(WINDOW, TARGET, channels=2, blocks=1, kernel=3, class_channels=2,
                                                 class_blocks=1, class_kernel=3))
    with pytest.raises(M.NotApplicable):
        M.random_morphism(baseline, rng)
    with pytest.raises(M.NotApplicable):
        M.widen_conv(model_for("hilbert2d"), rng, block=1)  # a residual block has no filters of its own


def genome_windows() -> torch.Tensor:
    """Signal, one annotation channel in [0, 1] and 4 base-code channels (0 = N, 1-4 = A, C, G, T)."""
    g = torch.Generator().manual_seed(2)
    signal = inputs()[0][:, None]
    annotation = torch.rand(4, 1, WINDOW, generator=g, dtype=torch.float64)
    codes = torch.randint(0, 5, (4, 4, WINDOW), generator=g).double()
    return torch.cat([signal, annotation, codes], dim=1)


@pytest.mark.parametrize("space, name", CASES)
def test_morphisms_preserve_function_with_genome_channels_and_a_sequence_tower(space, name):
    torch.manual_seed(0)
    config = {**configs()[space], "input_channels": 6, "sequence_tower": {"first": 2, "width": 4, "filters": 3}}
    old = build_model(config).double().eval()
    x = genome_windows()
    for site in sites(old, name):
        new = M.MORPHISMS[name](old, np.random.default_rng(0), **site)
        assert new.to_config()["sequence_tower"] == config["sequence_tower"]
        with torch.no_grad():
            for a, b in zip(old(x), new(x)):
                torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
