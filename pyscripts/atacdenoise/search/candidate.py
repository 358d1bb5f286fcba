"""One candidate of the search: its settings, data, training (SGD + SGDR) and validation metrics.

Everything here is a pure function of its arguments (every random draw comes
from the candidate's seed), so ``search/nash.py`` runs candidates in order and
``search/workers.py`` runs them in other processes with the same results; both
import this module, neither imports the other's loop.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from atacdenoise.errors import InputError
from atacdenoise.metrics import auprc, pearson

# mse: the seed's loss; log-mse: MSE of log1p(signal), gentler on heavy-tailed coverage;
# log-mse+pearson: log-mse + (1 - Pearson per window, original units);
# log-mse+pearson+mse: that + 0.0005 * MSE in original units (AtacWorks' weight);
# atacworks: 0.0005*MSE + (1 - Pearson) + BCE, AtacWorks' own loss for its baseline.
LOSSES = ("mse", "log-mse", "log-mse+pearson", "log-mse+pearson+mse", "atacworks")
LINEAR_MSE_WEIGHT = 0.0005


@dataclass(frozen=True)
class SearchSettings:
    """Everything that defines a search; saved in the checkpoint and compared on resume."""

    space: str
    iterations: int
    children: int
    epochs: int
    lr_max: float
    lr_min: float
    morphisms_per_child: tuple[int, int]
    batch_size: int
    seed: int
    initial_random_draws: int
    initial_epochs: int
    peak_weight: float
    max_train_windows: int | None
    momentum: float
    loss: str
    max_parameters: int | None
    grad_clip: float
    train_data: str  # content fingerprints: a different file with the same name is different data
    val_data: str
    initial_model: str | None = None  # fingerprint of the starting model's architecture and weights
    mirror: bool = False  # training windows reversed at random (searches before this option: off)


@dataclass(frozen=True)
class TrainSettings:
    """How one candidate is trained (a child's epochs, or the initial search's)."""

    epochs: int
    lr_max: float
    lr_min: float
    momentum: float
    batch_size: int
    grad_clip: float
    peak_weight: float
    device: str
    loss: str = "mse"
    mirror: bool = False


@dataclass
class SearchData:
    """Training and validation tensors, moved to the device once.

    With a resampling source (``prepare --resample``) the training tensors are
    redrawn at the start of every epoch: epoch ``e`` of every candidate sees the
    same draw (seeded by ``(draw_seed, e)``), so candidates are compared on equal data.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    train_peaks: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    val_peaks: torch.Tensor
    window_bins: int
    target_bins: int
    source: object = None  # search.resample.TrainingSource
    draw_seed: int = 0
    drawn_epoch: int | None = None

    channels: list = field(default_factory=list)  # genome channel specs (dicts) of the data

    @property
    def code_channels(self) -> slice | None:
        """Input channels holding base codes (reversed windows must also be complemented there)."""
        from atacdenoise.tracks.channels import base_code_slice

        return base_code_slice(self.channels)

    @classmethod
    def from_pairs(cls, train: dict, val: dict, max_train_windows: int | None, device: str,
                   draw_seed: int = 0) -> "SearchData":
        source = train.get("source")
        if source is not None:
            n = max_train_windows or source.meta["windows_per_epoch"]
            train = {**source.draw(n, [draw_seed, 0]), "meta": train["meta"]}
            max_train_windows = None
        keep = slice(None) if max_train_windows is None else slice(0, max_train_windows)  # windows are in random order

        def tensor(array):
            return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float32), device=device)

        return cls(tensor(train["inputs"][keep]), tensor(train["targets"][keep]), tensor(train["peaks"][keep]),
                   tensor(val["inputs"]), tensor(val["targets"]), tensor(val["peaks"]),
                   int(train["meta"]["window_bins"]), int(train["meta"]["target_bins"]),
                   source, draw_seed, 0 if source is not None else None, list(train["meta"].get("channels", [])))

    def start_epoch(self, epoch: int) -> None:
        """Fresh noisy inputs for ``epoch`` when training from a source (no-op for fixed pairs)."""
        if self.source is None or epoch == self.drawn_epoch:
            return
        draw = self.source.draw(len(self.train_x), [self.draw_seed, epoch])
        device = self.train_x.device
        self.train_x = torch.as_tensor(draw["inputs"], device=device)
        self.train_y = torch.as_tensor(draw["targets"], device=device)
        self.train_peaks = torch.as_tensor(draw["peaks"].astype(np.float32), device=device)
        self.drawn_epoch = epoch



# ---------------------------------------------------------------- one candidate

def loss_function(settings: TrainSettings):
    """``loss(signal, target, peak_logits, peak_labels)`` for the configured loss."""
    from atacdenoise.models.losses import atacworks_loss, denoise_loss

    if settings.loss == "atacworks":
        return atacworks_loss
    terms = settings.loss.split("+")
    log_space = terms[0] == "log-mse"
    pearson_weight = 1.0 if "pearson" in terms else 0.0
    mse_weight = LINEAR_MSE_WEIGHT if "mse" in terms[1:] else 0.0
    return lambda signal, target, logits, peaks: denoise_loss(signal, target, logits, peaks,
                                                             peak_weight=settings.peak_weight, log_space=log_space,
                                                             pearson_weight=pearson_weight, mse_weight=mse_weight)


def train_child(model: torch.nn.Module, data: SearchData, settings: TrainSettings, seed: int, on_step=None,
                on_epoch=None):
    """Train ``model`` with SGD + cosine annealing and evaluate it; return ``(model, metrics)``.

    ``on_step(epoch, loss, grad_norm)`` (the norm before clipping) and
    ``on_epoch(epoch, model, train_loss)`` let a caller watch training (``benchmarks/diagnose_hilbert2d.py``).

    A pure function of its arguments (the seed fixes initialisation noise and
    batch order), so children could be trained in parallel later.
    """
    loss_fn = loss_function(settings)
    torch.manual_seed(seed)
    device = settings.device
    model = model.to(device).train()
    use_amp = device.startswith("cuda")
    n = len(data.train_x)
    steps_per_epoch = math.ceil(n / settings.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr_max, momentum=settings.momentum, nesterov=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs * steps_per_epoch,
                                                          eta_min=settings.lr_min)
    # bfloat16 keeps float32's range: raw coverage in the thousands overflows float16
    # (the AtacWorks baseline diverged that way), so no gradient scaler is needed.
    batch_order = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    train_loss = None
    for epoch in range(settings.epochs):
        data.start_epoch(epoch)
        total, permutation = 0.0, torch.randperm(n, generator=batch_order).to(device)
        for first in range(0, n, settings.batch_size):
            batch = permutation[first:first + settings.batch_size]
            x, y, peaks = data.train_x[batch], data.train_y[batch], data.train_peaks[batch]
            if settings.mirror:
                x, y, peaks = mirror_batch(x, y, peaks, torch.rand(len(batch), generator=batch_order) < 0.5,
                                           data.code_channels)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                signal, logits = model(x)
            loss = loss_fn(signal.float(), y, logits.float(), peaks)
            if not torch.isfinite(loss):  # diverged: never chosen, the search goes on
                return model, _diverged_metrics(model, started)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # Clipping keeps the seed's lr 0.05 stable on freshly morphed (deeper) networks;
            # 0 turns it off (the seed did not clip).
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip or math.inf)
            if on_step is not None:
                on_step(epoch, float(loss.detach()), float(grad_norm))
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        train_loss = total / n
        if on_epoch is not None:
            on_epoch(epoch, model, train_loss)
    metrics = evaluate(model, data, settings)
    metrics.update(train_loss=train_loss, parameters=count_parameters(model),
                   seconds=round(time.perf_counter() - started, 3))
    return model, metrics


def mirror_batch(inputs: torch.Tensor, targets: torch.Tensor, peaks: torch.Tensor, flip: torch.Tensor,
                 code_channels: slice | None = None):
    """Windows where ``flip`` is True reversed along the genome.

    Coverage of +-100 bp extended insertions reads the same on either strand,
    so a reversed window is as real as the original: twice the distinct
    examples from one chromosome. The target is centred, so it stays aligned.
    Genome channels flip with the signal (their renderings read the same on
    either strand), except base codes (``code_channels``): the reverse strand
    reads each bin's bases in reverse order and complemented.
    """
    flip = flip.to(inputs.device)[:, None]
    flip_inputs = flip if inputs.dim() == 2 else flip[:, :, None]
    reversed_inputs = inputs.flip(-1)
    if code_channels is not None:
        codes = reversed_inputs[:, code_channels].flip(1)
        codes = torch.where(codes > 0, 5 - codes, codes)  # A<->T, C<->G (1..4), N (0) stays
        reversed_inputs = torch.cat([reversed_inputs[:, :code_channels.start], codes,
                                     reversed_inputs[:, code_channels.stop:]], dim=1)
    return (torch.where(flip_inputs, reversed_inputs, inputs), torch.where(flip, targets.flip(-1), targets),
            torch.where(flip, peaks.flip(-1), peaks))


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: SearchData, settings: TrainSettings) -> dict:
    """Validation loss (the training loss), Pearson over all target bins, AUPRC of peak probabilities."""
    loss_fn = loss_function(settings)
    model.eval()
    use_amp = settings.device.startswith("cuda")
    total, signals, probabilities = 0.0, [], []
    for first in range(0, len(data.val_x), settings.batch_size):
        batch = slice(first, first + settings.batch_size)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
            signal, logits = model(data.val_x[batch])
        signal, logits = signal.float(), logits.float()
        loss = loss_fn(signal, data.val_y[batch], logits, data.val_peaks[batch])
        total += float(loss) * len(signal)
        signals.append(signal.cpu().numpy())
        probabilities.append(torch.sigmoid(logits).cpu().numpy())
    model.train()
    val_loss = total / len(data.val_x)
    if not math.isfinite(val_loss):
        return {"val_loss": None, "val_pearson": None, "val_auprc": None}
    return {
        "val_loss": val_loss,
        "val_pearson": pearson(np.concatenate(signals), data.val_y.cpu().numpy()),
        "val_auprc": auprc(np.concatenate(probabilities), data.val_peaks.cpu().numpy()),
    }


def _diverged_metrics(model, started) -> dict:
    return {"train_loss": None, "val_loss": None, "val_pearson": None, "val_auprc": None,
            "parameters": count_parameters(model), "seconds": round(time.perf_counter() - started, 3)}


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def child_seed(seed: int, iteration: int, child: int) -> int:
    """The one seed a candidate's randomness comes from."""
    return int(np.random.SeedSequence([seed, iteration, child]).generate_state(1)[0])


def train_settings(s: SearchSettings, device: str, epochs: int) -> TrainSettings:
    return TrainSettings(epochs=epochs, lr_max=s.lr_max, lr_min=s.lr_min, momentum=s.momentum,
                         batch_size=s.batch_size, grad_clip=s.grad_clip, peak_weight=s.peak_weight,
                         device=device, loss=s.loss, mirror=s.mirror)


def train_candidate(settings: SearchSettings, parent, iteration: int, child: int, data: SearchData, device: str):
    """One candidate slot: a random draw (iteration 0) or the parent morphed, trained; ``(morphisms, metrics, model)``.

    A pure function of its arguments (everything random comes from the child's
    seed), so candidates can be trained in any order or in parallel.
    """
    seed = child_seed(settings.seed, iteration, child)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)  # fresh layers take their initial weights from torch's generator
    if iteration == 0:
        model = random_initial_model(settings, rng, data.window_bins, data.target_bins, data.channels)
        from atacdenoise.models.common import set_peak_prior

        set_peak_prior(model, float(data.train_peaks.float().mean()))
        morphisms = []
        epochs = settings.initial_epochs
    else:
        model, morphisms = morphed_child(settings, parent, rng)
        epochs = settings.epochs
    model, metrics = train_child(model, data, train_settings(settings, device, epochs), seed)
    return morphisms, metrics, model


def random_initial_model(settings: SearchSettings, rng: np.random.Generator, window_bins: int, target_bins: int,
                         channels: list | None = None):
    from atacdenoise.models import build_model, random_initial_config
    from atacdenoise.tracks.channels import model_inputs

    cap = settings.max_parameters
    for _ in range(20):  # the size cap applies to the random search too
        config = random_initial_config(settings.space, rng, window_bins=window_bins, target_bins=target_bins)
        if channels:
            config.update(model_inputs(channels))
        model = build_model(config)
        if cap is None or count_parameters(model) <= cap:
            return model
    raise InputError(None, f"no random initial model has at most {cap:,} parameters; raise --max-parameters")


def morphed_child(settings: SearchSettings, parent: torch.nn.Module, rng: np.random.Generator):
    from atacdenoise.models.morphisms import apply_random_morphisms

    low, high = settings.morphisms_per_child
    cap = settings.max_parameters
    for _ in range(20):  # redraw children that outgrow the size cap (e.g. to fit a shipped model)
        child, names = apply_random_morphisms(parent.cpu(), rng, int(rng.integers(low, high + 1)))
        if cap is None or count_parameters(child) <= cap:
            return child, names
    return copy.deepcopy(parent).cpu(), ["none (every draw exceeded max_parameters)"]

def snapshot_model(model: torch.nn.Module, metrics: dict) -> dict:
    """Architecture, weights (CPU copies) and metrics: what a checkpoint keeps of a model."""
    return {"config": model.to_config(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "metrics": dict(metrics)}


def restore_model(snapshot: dict) -> torch.nn.Module:
    from atacdenoise.models import build_model

    model = build_model(snapshot["config"])
    model.load_state_dict(snapshot["state_dict"])
    return model


