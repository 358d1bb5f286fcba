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

import hashlib
import logging
import math
import re
import time
from contextlib import contextmanager
from dataclasses import MISSING, asdict, fields, replace
from pathlib import Path

import numpy as np
import torch

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path
from atacdenoise.search.data import check_compatible, load_pairs
from atacdenoise.search.candidate import (
    LOSSES, SearchData, SearchSettings, TrainSettings, count_parameters, evaluate, restore_model, snapshot_model,
    train_candidate, train_settings,
)
from atacdenoise.search.history import plot_search, write_history, write_json
from atacdenoise.search.workers import start_pool, train_in_worker

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "atacdenoise-nash-checkpoint/1"
SPACES = ("hilbert2d", "dilated1d", "atacworks")  # atacworks: the fixed baseline, trained, never morphed
# Settings that may change on --resume: raising ``iterations`` extends a finished search.
RESUMABLE_CHANGES = ("iterations",)


# ---------------------------------------------------------------- a given starting model

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
    devices: list[str] | None = None,
) -> dict:
    """Run (or continue) a search in ``out_dir``; return the summary (also in ``summary.json``).

    ``train`` and ``val`` are pairs files (``atacdenoise prepare``) or their
    loaded dicts. Writes ``best_model.json``/``best_model.pt``, ``history.jsonl``,
    ``summary.json``, ``search.png`` and ``checkpoint/checkpoint.pt``.
    ``parallel_children`` > 1 trains each iteration's candidates in that many
    worker processes on the same device, or spread over ``devices`` (e.g.
    ``["cuda:0", "cuda:1"]``; the first also holds the search's own copy of the
    data); the results are the same.
    """
    train, val = as_pairs(train), as_pairs(val)
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
    devices = worker_device_list(devices or [device], workers)
    device = devices[0]
    if not val["peaks"].any():
        log.warning("%s: the validation windows contain no peak; AUPRC is undefined (reported as None)", val["path"])
    data = SearchData.from_pairs(train, val, settings.max_train_windows, device, draw_seed=settings.seed)
    search = _Search(settings, state, data, device, out_dir, progress, start_model,
                     data_paths={"train": _source_path(train), "val": _source_path(val)})
    pool = None
    if workers > 1:
        pool = start_pool(workers, train, val, settings.max_train_windows, devices, settings.seed)
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
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise InputError(None, f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(None, f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise InputError(None, f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                               f"numbered from 0")
    return device


def worker_device_list(devices: list[str], workers: int) -> list[str]:
    """``--devices`` resolved (each as ``--device``), with a note when some of them will not be used."""
    resolved = [resolve_device(device.strip()) for device in devices]
    if len(resolved) > workers:
        log.warning("note: %d worker(s) (--parallel-children %d) use only %s of --devices %s", workers, workers,
                    ",".join(resolved[:workers]), ",".join(resolved))
    return resolved


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


def as_pairs(pairs) -> dict:
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

