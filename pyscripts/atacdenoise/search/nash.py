"""Neural architecture search by hill climbing (NASH, Elsken et al. 2017), as the seed grew its CNN.

Iteration 0 is the seed's random search: ``initial_random_draws`` random
initial architectures, each trained ``initial_epochs``; the best on validation
becomes the first parent. With ``initial_model`` (a finished search's folder)
iteration 0 instead evaluates that model as it is, and the climb continues
from it: a search can pick up where an earlier one (or the champion) stopped. Every later iteration makes ``children`` children,
each the parent changed by a few function-preserving network morphisms and
trained with SGD (Nesterov momentum) whose learning rate is annealed from
``lr_max`` to ``lr_min`` along a cosine over ``epochs`` epochs (SGDR: a warm
restart per child). The parent, with its validation loss, stays a candidate, so
the best validation loss never gets worse. The best candidate is the next parent.

Reproducibility and resuming. Every random draw of a candidate (its
architecture, morphisms, initial weights, batch order) comes from a seed derived
from ``(seed, iteration, child)``, so no random state has to be carried from one
candidate to the next: the checkpoint written after each candidate (parent,
best candidate so far, history) is enough to continue exactly where a run
stopped, with the same history as an uninterrupted run (bit for bit on CPU).
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
import warnings
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path
from atacdenoise.search.data import check_compatible, load_pairs
from atacdenoise.search.history import plot_search, write_history, write_json
from atacdenoise.evaluate.metrics import auprc, pearson

CHECKPOINT_FORMAT = "atacdenoise-nash-checkpoint/1"
SPACES = ("hilbert2d", "dilated1d", "atacworks")  # atacworks: the fixed baseline, trained, never morphed
# mse: the seed's loss; log-mse: MSE of log1p(signal), gentler on heavy-tailed coverage;
# log-mse+pearson: log-mse + (1 - Pearson per window, original units);
# log-mse+pearson+mse: that + 0.0005 * MSE in original units (AtacWorks' weight);
# atacworks: 0.0005*MSE + (1 - Pearson) + BCE, AtacWorks' own loss for its baseline.
LOSSES = ("mse", "log-mse", "log-mse+pearson", "log-mse+pearson+mse", "atacworks")
LINEAR_MSE_WEIGHT = 0.0005
# Settings that may change on --resume: raising ``iterations`` extends a finished search.
RESUMABLE_CHANGES = ("iterations",)


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


def _evaluated(model: torch.nn.Module, data: SearchData, settings: TrainSettings) -> dict:
    """Metrics of an untrained-here model (the given starting point of a continued search)."""
    started = time.perf_counter()
    model = model.to(settings.device)
    metrics = evaluate(model, data, settings)
    metrics.update(train_loss=None, parameters=count_parameters(model),
                   seconds=round(time.perf_counter() - started, 3))
    return metrics


def fit_to_channels(model, meta: dict):
    """A model that reads fewer input channels than the data holds (a counts-only start on data with
    genome channels) gets the missing ones with zero weights: the same function, ready to learn them."""
    from atacdenoise.models.morphisms import add_input_channels
    from atacdenoise.tracks.channels import model_inputs

    wanted = model_inputs(meta.get("channels", []))
    extra = wanted["input_channels"] - model.input_channels
    return add_input_channels(model, extra, wanted.get("sequence_tower")) if extra > 0 else model


def _check_model_fits(model, data_meta: dict, source, space: str) -> None:
    """A starting model must be of the searched space and read the data's windows."""
    if model.space != space:
        raise InputError(source, f"the initial model is a {model.space} model but --space is {space}")
    from atacdenoise.tracks.channels import channel_count

    data_meta = {**data_meta, "input_channels": 1 + channel_count(data_meta.get("channels", []))}
    for key in ("window_bins", "target_bins", "input_channels"):
        if getattr(model, key) != data_meta[key]:
            raise InputError(source, f"the initial model has {key} {getattr(model, key)} but the training data "
                                     f"has {data_meta[key]}")


def model_fingerprint(model: torch.nn.Module) -> str:
    digest = hashlib.blake2b(repr(model.to_config()).encode(), digest_size=16)
    for value in model.state_dict().values():
        digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


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


# ---------------------------------------------------------------- the search

def run_search(
    train,
    val,
    out_dir,
    space: str = "dilated1d",
    iterations: int = 60,
    children: int = 8,
    epochs: int = 17,
    lr_max: float = 0.05,
    lr_min: float = 0.0,
    morphisms_per_child: tuple[int, int] = (1, 3),
    batch_size: int = 64,
    device: str = "auto",
    seed: int = 0,
    resume: bool = False,
    initial_random_draws: int = 10,
    initial_epochs: int = 20,
    peak_weight: float = 1.0,
    max_train_windows: int | None = None,
    progress: bool = True,
    momentum: float = 0.9,
    grad_clip: float = 1.0,
    loss: str = "log-mse+pearson",
    max_parameters: int | None = None,
    initial_model=None,
    mirror: bool = True,
    parallel_children: int = 1,
) -> dict:
    """Run (or continue) a search in ``out_dir``; return the summary (also in ``summary.json``).

    ``train`` and ``val`` are pairs files (``atacdenoise prepare``) or their
    loaded dicts. Writes ``best_model.json``/``best_model.pt``, ``history.jsonl``,
    ``summary.json``, ``search.png`` and ``checkpoint/checkpoint.pt``.
    ``parallel_children`` > 1 trains each iteration's candidates in that many
    worker processes on the same device; the results are the same.
    """
    train, val = _as_pairs(train), _as_pairs(val)
    check_compatible(train, val)
    workers = _at_least(parallel_children, 1, "parallel children")
    if space == "atacworks" and iterations:
        raise InputError(None, "the atacworks baseline is a fixed architecture: use --iterations 0 "
                               "(it is trained for --initial-epochs, like the initial random search)")
    settings = SearchSettings(
        space=_check_space(space), iterations=_at_least(iterations, 0, "iterations"),
        children=_at_least(children, 1, "children"), epochs=_at_least(epochs, 1, "epochs"),
        lr_max=float(lr_max), lr_min=float(lr_min), morphisms_per_child=_check_range(morphisms_per_child),
        batch_size=_at_least(batch_size, 1, "batch size"), seed=int(seed),
        initial_random_draws=_at_least(initial_random_draws, 1, "initial random draws"),
        initial_epochs=_at_least(initial_epochs, 1, "initial epochs"), peak_weight=float(peak_weight),
        max_train_windows=None if max_train_windows is None else _at_least(max_train_windows, 1, "max train windows"),
        momentum=float(momentum), grad_clip=_check_grad_clip(grad_clip), loss=_check_loss(loss),
        max_parameters=None if max_parameters is None else _at_least(max_parameters, 1, "max parameters"),
        train_data=fingerprint(train), val_data=fingerprint(val), mirror=_check_mirror(mirror, train["meta"]))
    start_model = None
    if initial_model is not None:
        from atacdenoise.search.history import load_search_model

        start_model = fit_to_channels(load_search_model(initial_model), train["meta"])
        _check_model_fits(start_model, data_meta=train["meta"], source=initial_model, space=settings.space)
        settings = replace(settings, initial_random_draws=1, initial_model=model_fingerprint(start_model))
    out_dir = Path(out_dir)
    state = _start_or_resume(out_dir, settings, resume)
    device = resolve_device(device)
    if not val["peaks"].any():
        warnings.warn(f"{val['path']}: the validation windows contain no peak; AUPRC is undefined (reported as None)")
    data = SearchData.from_pairs(train, val, settings.max_train_windows, device, draw_seed=settings.seed)
    search = _Search(settings, state, data, device, out_dir, progress, start_model,
                     data_paths={"train": _source_path(train), "val": _source_path(val)})
    pool = None
    if workers > 1:
        from atacdenoise.search.workers import start_pool

        pool = start_pool(workers, train, val, settings.max_train_windows, device, settings.seed)
    try:
        with _deterministic(device == "cpu"):
            search.run(pool)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return search.finish()


class _Search:
    """The hill climb's loop; ``state`` is exactly what the checkpoint holds."""

    def __init__(self, settings: SearchSettings, state: dict, data: SearchData, device: str, out_dir: Path,
                 progress: bool, start_model: torch.nn.Module | None = None, data_paths: dict | None = None):
        self.settings, self.state, self.data, self.device, self.out_dir = settings, state, data, device, out_dir
        self.progress, self.start_model = progress, start_model
        self.data_paths = data_paths or {}  # where the training and validation data were read (for the registry)
        self.started = time.perf_counter()
        self.parent = None if state["parent"] is None else restore_model(state["parent"])

    # -- loop
    def run(self, pool=None) -> None:
        """Every candidate slot in order; with a worker ``pool`` an iteration's candidates train at once."""
        s = self.settings
        total = s.initial_random_draws + s.iterations * s.children
        done = sum(not row["is_parent"] for row in self.state["history"])
        with _progress_bar(total, done, self.progress) as bar:
            while self.state["iteration"] <= s.iterations:
                iteration, child = self.state["iteration"], self.state["next_child"]
                if iteration > 0 and child == 0:
                    self._record_parent()
                elif child >= self._candidates(iteration):
                    self._close_iteration()
                    continue
                elif pool is not None and not (iteration == 0 and self.start_model is not None):
                    self._train_in_workers(pool, iteration, child, bar)  # records and checkpoints each
                    continue
                else:
                    self._train_candidate(iteration, child)
                    bar.update(1)
                    bar.set_postfix(iteration=iteration, child=child, best=_short(self._best_so_far()))
                self.state["next_child"] += 1
                self._checkpoint()

    def _candidates(self, iteration: int) -> int:
        """Candidate slots in an iteration: draws in the random search; parent + children later."""
        return self.settings.initial_random_draws if iteration == 0 else self.settings.children + 1

    def _record_parent(self) -> None:
        """The parent competes with its validation loss as it stands (it may win)."""
        parent = self.state["parent"]
        row = {**_row(self.state["iteration"], 0, [], parent["metrics"]), "seconds": 0.0, "is_parent": True}
        self.state["history"].append(row)
        self.state["best"] = {**parent, "row": len(self.state["history"]) - 1}

    def _train_candidate(self, iteration: int, child: int) -> None:
        if iteration == 0 and self.start_model is not None:  # continue from a given model: evaluate only
            model, morphisms = self.start_model, ["initial model"]
            metrics = _evaluated(model, self.data, train_settings(self.settings, self.device, 0))
        else:
            morphisms, metrics, model = train_candidate(self.settings, self.parent, iteration, child, self.data,
                                                        self.device)
        self._record(iteration, child, morphisms, metrics, lambda: snapshot_model(model, metrics))

    def _train_in_workers(self, pool, iteration: int, first_child: int, bar) -> None:
        """The iteration's remaining candidates trained at once in worker processes, recorded in order."""
        from atacdenoise.search.workers import train_in_worker

        children = range(first_child, self._candidates(iteration))
        futures = [pool.submit(train_in_worker, self.settings, self.state["parent"], iteration, child)
                   for child in children]
        for child, future in zip(children, futures):
            morphisms, metrics, snapshot = future.result()
            self._record(iteration, child, morphisms, metrics, lambda: snapshot)
            self.state["next_child"] += 1
            self._checkpoint()
            bar.update(1)
            bar.set_postfix(iteration=iteration, child=child, best=_short(self._best_so_far()))

    def _record(self, iteration: int, child: int, morphisms: list[str], metrics: dict, snapshot) -> None:
        self.state["history"].append({**_row(iteration, child, morphisms, metrics), "is_parent": False})
        if _loss_key(metrics) < _loss_key(self._best_metrics()):
            self.state["best"] = {**snapshot(), "row": len(self.state["history"]) - 1}

    def _close_iteration(self) -> None:
        best = self.state["best"]
        if best is None or best["metrics"]["val_loss"] is None:
            raise RuntimeError("every candidate of the initial random search diverged; lower --lr or check the data")
        self.state["history"][best["row"]]["chosen"] = True
        self.state["parent"] = {key: best[key] for key in ("config", "state_dict", "metrics")}
        self.parent = restore_model(self.state["parent"])
        self.state.update(iteration=self.state["iteration"] + 1, next_child=0, best=None)
        self._checkpoint()
        self._write_outputs()

    def _best_metrics(self) -> dict | None:
        return None if self.state["best"] is None else self.state["best"]["metrics"]

    def _best_so_far(self) -> float | None:
        best = self._best_metrics() or (self.state["parent"] or {}).get("metrics")
        return None if best is None else best["val_loss"]

    # -- files
    def _checkpoint(self) -> None:
        path = self.out_dir / "checkpoint" / "checkpoint.pt"
        with atomic_path(path) as tmp:
            torch.save(self.state, tmp)
        write_history(self.out_dir / "history.jsonl", self.state["history"])

    def _write_outputs(self) -> None:
        parent = self.state["parent"]
        write_json(self.out_dir / "best_model.json", parent["config"])
        with atomic_path(self.out_dir / "best_model.pt") as tmp:
            torch.save(parent["state_dict"], tmp)
        write_json(self.out_dir / "summary.json", self.summary())
        plot_search(self.out_dir / "search.png", self.state["history"])

    def summary(self) -> dict:
        parent = self.state["parent"] or {"metrics": {}, "config": None}
        finished = self.state["iteration"] - 1
        return {
            "best_val_loss": parent["metrics"].get("val_loss"),
            "best_val_pearson": parent["metrics"].get("val_pearson"),
            "best_val_auprc": parent["metrics"].get("val_auprc"),
            "best_parameters": parent["metrics"].get("parameters"),
            "best_config": parent["config"],
            "iterations_finished": finished,
            "done": finished >= self.settings.iterations,
            "candidates_trained": sum(not row["is_parent"] for row in self.state["history"]),
            "device": self.device,
            "seconds_this_run": round(time.perf_counter() - self.started, 1),
            "n_train": len(self.data.train_x),
            "n_val": len(self.data.val_x),
            "settings": asdict(self.settings),
            # The files behind settings' train_data/val_data fingerprints: registration logs them as datasets.
            "data_paths": self.data_paths,
        }

    def finish(self) -> dict:
        self._write_outputs()
        return self.summary()


# ---------------------------------------------------------------- checkpoint and resume

def _start_or_resume(out_dir: Path, settings: SearchSettings, resume: bool) -> dict:
    checkpoint = out_dir / "checkpoint" / "checkpoint.pt"
    has_files = out_dir.is_dir() and any(out_dir.iterdir())
    if not resume:
        if has_files:
            raise InputError(out_dir, "output folder is not empty: use --resume or another --outdir")
        return {"format": CHECKPOINT_FORMAT, "settings": asdict(settings), "iteration": 0, "next_child": 0,
                "parent": None, "best": None, "history": []}
    if not checkpoint.exists():
        if has_files:
            raise InputError(out_dir, "nothing to resume: checkpoint/checkpoint.pt is missing")
        return _start_or_resume(out_dir, settings, resume=False)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable checkpoint is the same problem for the user
        raise InputError(checkpoint, f"cannot read the checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(checkpoint, f"not a search checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    _check_same_search(out_dir, state["settings"], asdict(settings))
    state["settings"] = asdict(settings)  # only resumable keys can differ
    return state


def _check_same_search(out_dir: Path, saved: dict, now: dict) -> None:
    # A setting added after the checkpoint was written had its default then.
    defaults = {f.name: f.default for f in fields(SearchSettings) if f.default is not MISSING}
    saved = {**defaults, **saved}
    differing = [f"{key} (saved {_plain(saved.get(key))!r}, now {_plain(now[key])!r})"
                 for key in now if key not in RESUMABLE_CHANGES and _plain(saved.get(key)) != _plain(now[key])]
    if differing:
        raise InputError(out_dir, "cannot resume: the saved search differs in " + "; ".join(differing)
                         + ". Nothing was changed; use the same settings or another --outdir")


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


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


def _row(iteration: int, child: int, morphisms: list[str], metrics: dict) -> dict:
    return {"iteration": iteration, "child": child, "morphisms": list(morphisms),
            "parameters": metrics["parameters"], "train_loss": metrics["train_loss"],
            "val_loss": metrics["val_loss"], "val_pearson": metrics["val_pearson"],
            "val_auprc": metrics["val_auprc"], "seconds": metrics["seconds"], "chosen": False}


def _loss_key(metrics: dict | None) -> float:
    """Lower is better; a missing or diverged candidate is worst. Ties keep the earlier (the parent)."""
    return math.inf if metrics is None or metrics["val_loss"] is None else metrics["val_loss"]


# ---------------------------------------------------------------- helpers

def fingerprint(pairs: dict) -> str:
    """Content hash of a pairs file's (or a resampling source's) arrays (cheap next to training)."""
    digest = hashlib.blake2b(digest_size=16)
    source = pairs.get("source")
    arrays = source.fingerprint_arrays() if source is not None else (pairs[k] for k in ("inputs", "targets", "peaks"))
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    if source is not None:
        digest.update(repr(sorted(source.meta.items())).encode())
    return digest.hexdigest()


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(None, f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(None, f"--device must be auto, cpu or cuda, got {device!r}")
    return device


@contextmanager
def _deterministic(enabled: bool):
    """Deterministic kernels for the search only; the caller's setting is restored after."""
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(enabled or before, warn_only=True if enabled else before_warn)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)


@contextmanager
def _progress_bar(total: int, done: int, enabled: bool):
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, desc="NASH", unit="model", disable=not enabled, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def _short(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _as_pairs(pairs) -> dict:
    """A loaded pairs dict; a resampling source comes as ``{"source", "meta", "path"}``."""
    from atacdenoise.search.resample import TrainingSource, is_source, load_source

    if isinstance(pairs, TrainingSource):
        return {"source": pairs, "meta": pairs.meta, "path": pairs.path}
    if isinstance(pairs, dict):
        return pairs
    if is_source(pairs):
        source = load_source(pairs)
        return {"source": source, "meta": source.meta, "path": source.path}
    return load_pairs(pairs)


def _source_path(pairs: dict) -> str | None:
    """The absolute path a pairs dict was read from (symlinks resolved: Nextflow stages inputs as links)."""
    return str(Path(pairs["path"]).resolve()) if pairs.get("path") else None


def _check_space(space: str) -> str:
    if space not in SPACES:
        raise InputError(None, f"search space must be one of {', '.join(SPACES)}, got {space!r}")
    return space


def _check_mirror(mirror: bool, meta: dict) -> bool:
    if mirror and (meta["window_bins"] - meta["target_bins"]) % 2:
        raise InputError(None, f"mirrored training windows need a centred target, but window {meta['window_bins']} "
                               f"and target {meta['target_bins']} bins differ by an odd number: use --no-mirror")
    return bool(mirror)


def _check_grad_clip(grad_clip) -> float:
    if not float(grad_clip) >= 0:
        raise InputError(None, f"gradient clipping norm must be >= 0 (0: off), got {grad_clip}")
    return float(grad_clip)


def _check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise InputError(None, f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    return loss


def _at_least(value, minimum: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise InputError(None, f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_range(bounds) -> tuple[int, int]:
    low, high = (int(b) for b in bounds)
    if not 1 <= low <= high:
        raise InputError(None, f"morphisms per child must be a range 1 <= low <= high, got {tuple(bounds)}")
    return low, high

