"""Candidates of one iteration trained side by side in worker processes (``search --parallel-children K``).

Small networks leave a GPU (or a many-core CPU) mostly idle; K processes each
train one candidate at a time on the same device. Every worker holds its own
copy of the training and validation data, made once when the pool starts.
Results do not depend on K: a candidate is a pure function of its seed
(:func:`atacdenoise.search.candidate.train_candidate`), and the search records them
in child order, checkpointing after each, exactly as a sequential search does.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import torch

from atacdenoise.search.candidate import SearchData, restore_model, snapshot_model, train_candidate

_WORKER: dict = {}


def start_pool(n_workers: int, train: dict, val: dict, max_train_windows: int | None, device: str,
               draw_seed: int) -> ProcessPoolExecutor:
    """A pool of ``n_workers`` processes (spawned: CUDA cannot be forked), CPU threads shared out between them."""
    threads = max(1, torch.get_num_threads() // n_workers)
    return ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker,
                               initargs=(train, val, max_train_windows, device, draw_seed, threads))


def _start_worker(train: dict, val: dict, max_train_windows: int | None, device: str, draw_seed: int,
                  threads: int) -> None:
    torch.set_num_threads(threads)
    # Same kernels as the sequential search: deterministic on CPU.
    torch.use_deterministic_algorithms(device == "cpu", warn_only=True)
    _WORKER.update(data=SearchData.from_pairs(train, val, max_train_windows, device, draw_seed=draw_seed),
                   device=device)


def train_in_worker(settings, parent_snapshot: dict | None, iteration: int, child: int):
    """``(morphisms, metrics, snapshot)`` of one candidate, trained in this worker."""
    parent = None if parent_snapshot is None else restore_model(parent_snapshot)
    morphisms, metrics, model = train_candidate(settings, parent, iteration, child, _WORKER["data"],
                                                _WORKER["device"])
    return morphisms, metrics, snapshot_model(model, metrics)
