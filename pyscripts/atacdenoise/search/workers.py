"""Candidates of one iteration trained side by side in worker processes (``search --parallel-children K``).

Small networks leave a GPU (or a many-core CPU) mostly idle; K processes each
train one candidate at a time, on the same device or spread over several GPUs
of one node (``--devices cuda:0,cuda:1``: worker i trains on device i mod D;
a candidate goes to whichever worker is free). Every worker holds its own
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


def worker_devices(n_workers: int, devices: list[str]) -> list[str]:
    """The device of each worker: the devices in turn (worker i gets device i mod D)."""
    return [devices[i % len(devices)] for i in range(n_workers)]


def start_pool(n_workers: int, train: dict, val: dict, max_train_windows: int | None, devices: list[str],
               draw_seed: int) -> ProcessPoolExecutor:
    """A pool of ``n_workers`` processes (spawned: CUDA cannot be forked) spread over ``devices``, CPU threads
    shared out between them."""
    context = multiprocessing.get_context("spawn")
    threads = max(1, torch.get_num_threads() // n_workers)
    # Every worker takes its device from this queue as it starts: one entry per worker.
    assignments = context.Queue()
    for device in worker_devices(n_workers, devices):
        assignments.put(device)
    return ProcessPoolExecutor(max_workers=n_workers, mp_context=context, initializer=_start_worker,
                               initargs=(train, val, max_train_windows, assignments, draw_seed, threads))


def _start_worker(train: dict, val: dict, max_train_windows: int | None, assignments, draw_seed: int,
                  threads: int) -> None:
    device = assignments.get()
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
