"""Exactly function-preserving network morphisms: the moves of the NASH search.

NASH (Elsken et al. 2017) grows a network by edits that leave its function
unchanged, so a child starts from its parent's loss; the edits follow Net2Net
(Chen et al. 2015). Every morphism here takes a model and a
``numpy.random.Generator`` and returns a NEW model, built from the edited JSON
config, with the old weights transferred (same dtype, device and train/eval
mode) so that ``new(x) == old(x)`` for every input ``x``:

* ``deepen_conv``  -- hilbert2d: insert an identity conv (centre tap 1) after a
  feature map; the maps are all non-negative, so ``relu(identity(h)) == h``.
  dilated1d: insert a residual block whose last conv is zero.
* ``deepen_dense`` -- insert an identity Linear after a (ReLU) dense layer.
* ``widen_conv`` / ``widen_dense`` -- Net2Wider: replicate randomly chosen units
  and split each unit's outgoing weights among its copies. Consumers are found
  through the graph: the next conv, convs that concatenate the map, residual
  blocks it passes through, and the flatten -> dense boundary (each channel is
  a block of ``side * side`` flattened inputs).
* ``add_skip_residual`` -- insert ``relu(h + conv_b(relu(conv_a(h))))`` with a
  zero ``conv_b`` (hilbert2d).
* ``add_skip_concat`` -- feed an earlier feature map into a later conv by
  concatenation, with zero weights on the new input channels (the seed's final
  model concatenates the input image this way).
* ``widen_kernel`` -- zero-pad a conv kernel (3 -> 5 ...), keeping its centre.

The outgoing weights of replicated units are split with random positive shares
summing to one, rather than equally: the function is the same, but equal
shares would give the copies identical gradients forever, so they could never
learn different features (``split="equal"`` gives plain Net2Net).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from atacdenoise.models import dilated1d, hilbert2d
from atacdenoise.models.common import Denoiser
from atacdenoise.models.dilated1d import Dilated1DNet
from atacdenoise.models.hilbert2d import Hilbert2DNet
from atacdenoise.models.spec import build_model

MAX_KERNEL_2D = 9
MAX_KERNEL_1D = 51
WIDEN_FACTOR = 2  # NASH's widening factor


class NotApplicable(ValueError):
    """The model offers no place for this morphism (e.g. widen_dense without dense layers)."""


# ---------------------------------------------------------------- weight surgery

@dataclass
class UnitMap:
    """Where each unit (channel / neuron) of a new layer comes from.

    ``index[i]`` is the old unit that new unit ``i`` copies (-1: a new input
    whose weights are zero); ``share[i]`` is the fraction of that old unit's
    outgoing weights that new unit ``i`` carries (the shares of one old unit sum to 1).
    """

    index: torch.Tensor
    share: torch.Tensor

    @classmethod
    def identity(cls, n: int) -> "UnitMap":
        return cls(torch.arange(n), torch.ones(n, dtype=torch.float64))

    @classmethod
    def zeros(cls, n: int) -> "UnitMap":
        return cls(torch.full((n,), -1, dtype=torch.long), torch.zeros(n, dtype=torch.float64))

    def __len__(self) -> int:
        return len(self.index)

    def then(self, other: "UnitMap", offset: int) -> "UnitMap":
        """Concatenate ``other`` after self; ``offset`` = old units in front of ``other``'s."""
        shifted = torch.where(other.index >= 0, other.index + offset, other.index)
        return UnitMap(torch.cat([self.index, shifted]), torch.cat([self.share, other.share]))

    def per_block(self, block: int) -> "UnitMap":
        """Flatten boundary: every channel becomes ``block`` consecutive inputs (channel-major)."""
        offsets = torch.arange(block)
        index = torch.where(self.index[:, None] >= 0, self.index[:, None] * block + offsets, -1)
        return UnitMap(index.reshape(-1), self.share.repeat_interleave(block))


def replicate_units(n_old: int, n_new: int, rng: np.random.Generator, split: str = "random") -> UnitMap:
    """Net2Wider: keep all ``n_old`` units, add copies of random ones up to ``n_new``."""
    if n_new <= n_old:
        raise ValueError(f"widening needs more units than {n_old}, got {n_new}")
    index = np.concatenate([np.arange(n_old), rng.integers(0, n_old, n_new - n_old)])
    weight = rng.uniform(0.5, 1.5, n_new) if split == "random" else np.ones(n_new)
    share = weight / np.bincount(index, weights=weight, minlength=n_old)[index]
    return UnitMap(torch.from_numpy(index), torch.from_numpy(share))


def pad_kernel(weight: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Zero-pad the spatial dims of ``weight`` symmetrically to ``shape`` (the centre stays the centre)."""
    pads = []
    for old, new in zip(reversed(weight.shape[2:]), reversed(shape[2:])):
        pads += [(new - old) // 2, (new - old) // 2]
    return F.pad(weight, pads) if any(pads) else weight


@torch.no_grad()
def copy_layer(new: nn.Module, old: nn.Module, out_index: torch.Tensor | None = None,
               in_map: UnitMap | None = None) -> None:
    """Copy a Linear/Conv's weights: rows picked by ``out_index``, inputs mapped and scaled by ``in_map``."""
    device = old.weight.device
    if out_index is not None:
        out_index = out_index.to(device)
    weight = old.weight if out_index is None else old.weight[out_index]
    if in_map is not None:
        mapped = weight.new_zeros((weight.shape[0], len(in_map), *weight.shape[2:]))
        keep = (in_map.index >= 0).to(device)
        share = in_map.share.to(weight)[keep].view(1, -1, *[1] * (weight.dim() - 2))
        mapped[:, keep] = weight[:, in_map.index.to(device)[keep]] * share
        weight = mapped
    new.weight.copy_(pad_kernel(weight, new.weight.shape))
    if new.bias is not None:
        new.bias.copy_(old.bias if out_index is None else old.bias[out_index])


@torch.no_grad()
def set_identity(layer: nn.Module) -> None:
    """A square Linear/Conv that returns its input: centre tap 1 on the diagonal, zero elsewhere."""
    layer.weight.zero_()
    centre = tuple(k // 2 for k in layer.weight.shape[2:])
    for unit in range(layer.weight.shape[0]):
        layer.weight[(unit, unit, *centre)] = 1.0
    layer.bias.zero_()


@torch.no_grad()
def set_zero(layer: nn.Module) -> None:
    layer.weight.zero_()
    layer.bias.zero_()


@torch.no_grad()
def reset_random(layer: nn.Module, rng: np.random.Generator) -> None:
    """PyTorch's default Conv/Linear init, drawn from ``rng`` so a search is reproducible."""
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    weight = torch.empty(layer.weight.shape, dtype=torch.float64)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(weight[0].numel())
    bias = torch.empty(layer.bias.shape, dtype=torch.float64).uniform_(-bound, bound, generator=generator)
    layer.weight.copy_(weight)
    layer.bias.copy_(bias)


def rebuild(model: Denoiser, config: dict) -> Denoiser:
    """A new model for ``config`` on the old model's device, dtype and mode."""
    reference = next(model.parameters())
    new = build_model(config).to(device=reference.device, dtype=reference.dtype)
    return new.train(model.training)


def choose(rng: np.random.Generator, candidates: list, what: str, given=None):
    if given is not None:
        if given not in candidates:
            raise NotApplicable(f"{what} {given!r} is not one of {candidates}")
        return given
    if not candidates:
        raise NotApplicable(f"no {what} to apply this morphism to")
    return candidates[int(rng.integers(len(candidates)))]


@torch.no_grad()
def copy_encoder(new: Denoiser, old: Denoiser) -> None:
    """The learned sequence tower, when both have the same one (no morphism edits it)."""
    if old.encoder.tower_width and new.encoder.tower_width:
        new.encoder.tower.weight.copy_(old.encoder.tower.weight)
        new.encoder.tower.bias.copy_(old.encoder.tower.bias)


# ---------------------------------------------------------------- hilbert2d

@torch.no_grad()
def transfer_hilbert(old: Hilbert2DNet, new: Hilbert2DNet, block_source: list[int | None],
                     new_feature_maps: dict[int, UnitMap] | None = None,
                     dense_source: list[int | None] | None = None,
                     dense_maps: dict[int, UnitMap] | None = None,
                     input_map: UnitMap | None = None) -> None:
    """Copy every layer of ``new`` that has a source in ``old`` (``None``: a new layer, left to the caller).

    ``new_feature_maps[f]`` says how feature map ``f`` (output of a conv block)
    was widened; residual blocks pass their input's map through unchanged.
    ``input_map`` does the same for the input image's channels (new genome channels).
    """
    new_feature_maps = new_feature_maps or {}
    dense_maps = dense_maps or {}
    copy_encoder(new, old)
    maps = [input_map or UnitMap.identity(new.feature_channels[0])]
    for b, block in enumerate(new.blocks):
        produced = isinstance(block, hilbert2d.ConvBlock)
        maps.append(new_feature_maps.get(b + 1, UnitMap.identity(new.feature_channels[b + 1]))
                    if produced else maps[b])
    for b, ob in enumerate(block_source):
        if ob is None:
            continue
        block, old_block = new.blocks[b], old.blocks[ob]
        if isinstance(block, hilbert2d.ConvBlock):
            in_map = maps[b]
            source = new.concat_sources[b]
            if source is not None:
                extra = maps[source] if old.concat_sources[ob] is not None else UnitMap.zeros(len(maps[source]))
                in_map = in_map.then(extra, offset=old.feature_channels[ob])
            copy_layer(block.conv, old_block.conv, maps[b + 1].index, in_map)
        else:
            copy_layer(block.conv_a, old_block.conv_a, None, maps[b])
            copy_layer(block.conv_b, old_block.conv_b, maps[b + 1].index, None)

    in_map = maps[-1] if new.readout == "per-bin" else maps[-1].per_block(new.side * new.side)
    for l, ol in enumerate(dense_source or range(len(new.dense))):
        out_map = dense_maps.get(l, UnitMap.identity(new.dense[l].out_features))
        if ol is not None:
            copy_layer(new.dense[l], old.dense[ol], out_map.index, in_map)
        in_map = out_map
    copy_layer(new.signal_head, old.signal_head, None, in_map)
    copy_layer(new.peak_head, old.peak_head, None, in_map)


def hilbert_layers(model: Hilbert2DNet) -> tuple[dict, list[dict], list[dict]]:
    config = model.to_config()
    trunk, dense = hilbert2d.split_layers(config)
    return config, trunk, dense


def insert_trunk_layer(config: dict, trunk: list[dict], dense: list[dict], position: int, layer: dict) -> list:
    """Insert ``layer`` as trunk block ``position``; renumber concat sources. Returns the block sources."""
    for later in trunk[position:]:
        if later.get("concat") is not None and later["concat"] > position:
            later["concat"] += 1
    config["layers"] = trunk[:position] + [layer] + trunk[position:] + dense
    return list(range(position)) + [None] + list(range(position, len(trunk)))


def hilbert_deepen_conv(model: Hilbert2DNet, rng, position=None, kernel=None) -> Hilbert2DNet:
    config, trunk, dense = hilbert_layers(model)
    position = choose(rng, list(range(len(trunk) + 1)), "trunk position", position)
    kernel = int(kernel or rng.choice((3, 5)))
    layer = hilbert2d.conv_layer(model.feature_channels[position], kernel)
    sources = insert_trunk_layer(config, trunk, dense, position, layer)
    new = rebuild(model, config)
    transfer_hilbert(model, new, sources)
    set_identity(new.blocks[position].conv)
    return new


def hilbert_add_skip_residual(model: Hilbert2DNet, rng, position=None, kernel=3, hidden=None) -> Hilbert2DNet:
    config, trunk, dense = hilbert_layers(model)
    position = choose(rng, list(range(len(trunk) + 1)), "trunk position", position)
    hidden = hidden or max(model.feature_channels[position], 4)
    sources = insert_trunk_layer(config, trunk, dense, position, hilbert2d.residual_layer(hidden, kernel))
    new = rebuild(model, config)
    transfer_hilbert(model, new, sources)
    reset_random(new.blocks[position].conv_a, rng)
    set_zero(new.blocks[position].conv_b)
    return new


def hilbert_add_skip_concat(model: Hilbert2DNet, rng, block=None, source=None) -> Hilbert2DNet:
    config, trunk, dense = hilbert_layers(model)
    candidates = [b for b, layer in enumerate(trunk) if layer["type"] == "conv" and layer.get("concat") is None
                  and b >= 1]
    block = choose(rng, candidates, "conv block without a concat", block)
    trunk[block]["concat"] = choose(rng, list(range(block)), "earlier feature map", source)
    config["layers"] = trunk + dense
    new = rebuild(model, config)
    transfer_hilbert(model, new, list(range(len(trunk))))
    return new


def hilbert_widen_conv(model: Hilbert2DNet, rng, block=None, width=None, split="random") -> Hilbert2DNet:
    config, trunk, dense = hilbert_layers(model)
    block = choose(rng, [b for b, layer in enumerate(trunk) if layer["type"] == "conv"], "conv block", block)
    old_width = trunk[block]["filters"]
    trunk[block]["filters"] = int(width or WIDEN_FACTOR * old_width)
    new = rebuild(model, config)
    widened = replicate_units(old_width, trunk[block]["filters"], rng, split)
    transfer_hilbert(model, new, list(range(len(trunk))), new_feature_maps={block + 1: widened})
    return new


def hilbert_widen_kernel(model: Hilbert2DNet, rng, block=None) -> Hilbert2DNet:
    config, trunk, dense = hilbert_layers(model)
    candidates = [b for b, layer in enumerate(trunk) if layer["kernel"] + 2 <= MAX_KERNEL_2D]
    block = choose(rng, candidates, f"trunk block with kernel below {MAX_KERNEL_2D}", block)
    trunk[block]["kernel"] += 2
    new = rebuild(model, config)
    transfer_hilbert(model, new, list(range(len(trunk))))
    return new


def hilbert_deepen_dense(model: Hilbert2DNet, rng, after=None) -> Hilbert2DNet:
    config, trunk, dense = hilbert_layers(model)
    after = choose(rng, list(range(len(dense))), "dense layer", after)
    config["layers"] = trunk + dense[:after + 1] + [hilbert2d.dense_layer(dense[after]["units"])] + dense[after + 1:]
    new = rebuild(model, config)
    sources = list(range(after + 1)) + [None] + list(range(after + 1, len(dense)))
    transfer_hilbert(model, new, list(range(len(trunk))), dense_source=sources)
    set_identity(new.dense[after + 1])
    return new


def hilbert_widen_dense(model: Hilbert2DNet, rng, layer=None, width=None, split="random") -> Hilbert2DNet:
    config, trunk, dense = hilbert_layers(model)
    layer = choose(rng, list(range(len(dense))), "dense layer", layer)
    old_width = dense[layer]["units"]
    dense[layer]["units"] = int(width or WIDEN_FACTOR * old_width)
    config["layers"] = trunk + dense
    new = rebuild(model, config)
    widened = replicate_units(old_width, dense[layer]["units"], rng, split)
    transfer_hilbert(model, new, list(range(len(trunk))), dense_maps={layer: widened})
    return new


# ---------------------------------------------------------------- dilated1d

@torch.no_grad()
def transfer_dilated(old: Dilated1DNet, new: Dilated1DNet, block_source: list[int | None],
                     channel_map: UnitMap | None = None, input_map: UnitMap | None = None) -> None:
    """Copy stem, blocks with a source and heads; all trunk maps share ``channel_map``,
    the stem's inputs follow ``input_map`` (new genome channels)."""
    channels = channel_map or UnitMap.identity(new.stem.out_channels)
    copy_encoder(new, old)
    copy_layer(new.stem, old.stem, channels.index, input_map)
    for b, ob in enumerate(block_source):
        if ob is not None:
            copy_layer(new.blocks[b].conv_a, old.blocks[ob].conv_a, channels.index, channels)
            copy_layer(new.blocks[b].conv_b, old.blocks[ob].conv_b, channels.index, channels)
    copy_layer(new.signal_head, old.signal_head, None, channels)
    copy_layer(new.peak_head, old.peak_head, None, channels)


def dilated_deepen(model: Dilated1DNet, rng, position=None, kernel=None, dilation=None) -> Dilated1DNet:
    """Insert a residual block whose last conv is zero (blocks sit at layer positions 1..)."""
    config = model.to_config()
    n_blocks = len(model.blocks)
    position = choose(rng, list(range(n_blocks + 1)), "block position", position)
    block = dilated1d.residual_layer(int(kernel or rng.choice((3, 5, 9))), int(dilation or rng.choice((1, 2, 4, 8))))
    config["layers"].insert(position + 1, block)
    new = rebuild(model, config)
    transfer_dilated(model, new, list(range(position)) + [None] + list(range(position, n_blocks)))
    reset_random(new.blocks[position].conv_a, rng)
    set_zero(new.blocks[position].conv_b)
    return new


def dilated_widen(model: Dilated1DNet, rng, width=None, split="random") -> Dilated1DNet:
    config = model.to_config()
    old_width = config["channels"]
    config["channels"] = int(width or WIDEN_FACTOR * old_width)
    new = rebuild(model, config)
    transfer_dilated(model, new, list(range(len(model.blocks))),
                     replicate_units(old_width, config["channels"], rng, split))
    return new


def dilated_widen_kernel(model: Dilated1DNet, rng, layer=None) -> Dilated1DNet:
    """Widen the kernel of the stem (layer 0) or of a residual block's two convs."""
    config = model.to_config()
    candidates = [i for i, spec in enumerate(config["layers"]) if spec["kernel"] + 2 <= MAX_KERNEL_1D]
    layer = choose(rng, candidates, f"layer with kernel below {MAX_KERNEL_1D}", layer)
    config["layers"][layer]["kernel"] += 2
    new = rebuild(model, config)
    transfer_dilated(model, new, list(range(len(model.blocks))))
    return new


# ---------------------------------------------------------------- genome channels

def add_input_channels(model: Denoiser, extra: int, sequence_tower: dict | None = None) -> Denoiser:
    """The same function with ``extra`` more input channels (after its own) whose weights are zero.

    How a counts-only model becomes the starting point of a counts + genome
    model: before training the new channels change nothing, so any gain they
    bring afterwards is theirs (``benchmarks/bench_channels.py``). With
    ``sequence_tower`` (see ``common.InputEncoder``) some of them are base
    codes read through a new, randomly initialised tower whose outputs the
    trunk also starts with zero weights on.
    """
    if extra < 1:
        raise ValueError(f"extra input channels must be >= 1, got {extra}")
    if model.encoder.tower_width:
        raise NotApplicable("the model has a sequence tower: channels cannot be added behind it")
    config = model.to_config()
    old = model.encoder.out_channels
    config["input_channels"] = model.input_channels + extra
    if sequence_tower is not None:
        config["sequence_tower"] = dict(sequence_tower)
    new = rebuild(model, config)
    input_map = UnitMap.identity(old).then(UnitMap.zeros(new.encoder.out_channels - old), offset=old)
    if isinstance(model, Dilated1DNet):
        transfer_dilated(model, new, list(range(len(model.blocks))), input_map=input_map)
    elif isinstance(model, Hilbert2DNet):
        transfer_hilbert(model, new, list(range(len(model.blocks))), input_map=input_map)
    else:
        raise NotApplicable(f"a {model.space} model takes no genome channels")
    return new


# ---------------------------------------------------------------- public morphisms

def _dispatch(name: str, model: Denoiser, rng, implementations: dict, **kwargs) -> Denoiser:
    for cls, function in implementations.items():
        if isinstance(model, cls):
            return function(model, rng, **kwargs)
    raise NotApplicable(f"{name} does not apply to {model.space or type(model).__name__} models")


def deepen_conv(model, rng, **kwargs):
    """Insert an identity conv (hilbert2d) / a zero-output residual block (dilated1d)."""
    return _dispatch("deepen_conv", model, rng, {Hilbert2DNet: hilbert_deepen_conv, Dilated1DNet: dilated_deepen},
                     **kwargs)


def deepen_dense(model, rng, **kwargs):
    """Insert an identity Linear after a dense layer (hilbert2d)."""
    return _dispatch("deepen_dense", model, rng, {Hilbert2DNet: hilbert_deepen_dense}, **kwargs)


def widen_conv(model, rng, **kwargs):
    """Net2Wider on a conv block (hilbert2d) / on the trunk channels (dilated1d)."""
    return _dispatch("widen_conv", model, rng, {Hilbert2DNet: hilbert_widen_conv, Dilated1DNet: dilated_widen},
                     **kwargs)


def widen_dense(model, rng, **kwargs):
    """Net2Wider on a dense layer (hilbert2d)."""
    return _dispatch("widen_dense", model, rng, {Hilbert2DNet: hilbert_widen_dense}, **kwargs)


def add_skip_residual(model, rng, **kwargs):
    """Insert an additive skip block with a zero-initialised branch (hilbert2d)."""
    return _dispatch("add_skip_residual", model, rng, {Hilbert2DNet: hilbert_add_skip_residual}, **kwargs)


def add_skip_concat(model, rng, **kwargs):
    """Concatenate an earlier feature map into a later conv with zero weights (hilbert2d)."""
    return _dispatch("add_skip_concat", model, rng, {Hilbert2DNet: hilbert_add_skip_concat}, **kwargs)


def add_skip(model, rng, kind: str | None = None, **kwargs):
    """``kind`` "residual" or "concat" (random when None)."""
    kind = kind or ("residual", "concat")[int(rng.integers(2))]
    return (add_skip_residual if kind == "residual" else add_skip_concat)(model, rng, **kwargs)


def widen_kernel(model, rng, **kwargs):
    """Zero-pad a conv kernel by 2 (hilbert2d blocks; dilated1d stem or block)."""
    return _dispatch("widen_kernel", model, rng, {Hilbert2DNet: hilbert_widen_kernel,
                                                  Dilated1DNet: dilated_widen_kernel}, **kwargs)


MORPHISMS = {
    "deepen_conv": deepen_conv,
    "deepen_dense": deepen_dense,
    "widen_conv": widen_conv,
    "widen_dense": widen_dense,
    "add_skip_residual": add_skip_residual,
    "add_skip_concat": add_skip_concat,
    "widen_kernel": widen_kernel,
}


def random_morphism(model: Denoiser, rng: np.random.Generator,
                    allowed: tuple[str, ...] | None = None) -> tuple[Denoiser, str]:
    """Apply one morphism drawn uniformly among those that apply to ``model``."""
    names = list(allowed or MORPHISMS)
    for i in rng.permutation(len(names)):
        try:
            return MORPHISMS[names[i]](model, rng), names[i]
        except NotApplicable:
            continue
    raise NotApplicable(f"no morphism in {names} applies to this {model.space} model")


def apply_random_morphisms(model: Denoiser, rng: np.random.Generator, n: int,
                           allowed: tuple[str, ...] | None = None) -> tuple[Denoiser, list[str]]:
    """``n`` random morphisms in a row (NASH applies a few per child)."""
    names = []
    for _ in range(n):
        model, name = random_morphism(model, rng, allowed)
        names.append(name)
    return model, names
