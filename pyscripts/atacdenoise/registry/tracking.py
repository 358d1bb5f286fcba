"""Log a finished search to MLflow: one run per search, one nested run per child.

The search writes its results to disk first (``history.jsonl``, ``summary.json``,
``best_model.*``, ``search.png``); logging reads that folder, so an unreachable
server never costs a search its results: ``atacdenoise registry register DIR``
logs it later.
"""

from __future__ import annotations

import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from atacdenoise.errors import InputError
from atacdenoise.io.tracking_server import wait_for_tracking

MAX_PARAM_LENGTH = 500  # MLflow accepts longer values, but long ones are unreadable in the UI


DIGEST_TAG = "atacdenoise.model_sha256"  # on the runs, the logged model and the version of one registration


FAULT_STAGE_ENV = "ATACDENOISE_TEST_KILL_SERVER_AT"  # tests only: "STAGE:PGID"


def fault_point(stage: str) -> None:
    """Test hook: SIGKILL the tracking server's process group when ``$ATACDENOISE_TEST_KILL_SERVER_AT`` names ``stage``.

    Unset in normal use (then this does nothing); tests/test_faults.py sets it
    to kill a real server at a chosen point of a registration.
    """
    wanted = os.environ.get(FAULT_STAGE_ENV, "")
    if not wanted or wanted.rsplit(":", 1)[0] != stage:
        return
    try:
        os.killpg(int(wanted.rsplit(":", 1)[1]), signal.SIGKILL)
    except ProcessLookupError:
        pass
    time.sleep(0.5)  # let the kernel close its sockets: the next request meets a dead server


@contextmanager
def fault_before(owner, attribute: str, stage: str) -> Iterator[None]:
    """Test hook: while armed for ``stage``, ``owner.attribute`` first calls :func:`fault_point` (else: nothing)."""
    if os.environ.get(FAULT_STAGE_ENV, "").rsplit(":", 1)[0] != stage:
        yield
        return
    original = getattr(owner, attribute)

    def wrapped(*args, **kwargs):
        fault_point(stage)
        return original(*args, **kwargs)

    setattr(owner, attribute, wrapped)
    try:
        yield
    finally:
        setattr(owner, attribute, original)


def read_search(search_dir: str | os.PathLike) -> dict:
    """``summary``, ``history`` (rows) and ``config`` of a finished search; InputError names what is missing."""
    search_dir = Path(search_dir)
    if not search_dir.is_dir():
        raise InputError(search_dir, "search folder does not exist")
    found = {}
    for key, name in (("summary", "summary.json"), ("history", "history.jsonl"), ("config", "best_model.json")):
        path = search_dir / name
        if not path.is_file():
            raise InputError(path, "missing: is this a finished search folder?")
        try:
            text = path.read_text()
            found[key] = ([json.loads(line) for line in text.splitlines() if line.strip()]
                          if name.endswith(".jsonl") else json.loads(text))
        except json.JSONDecodeError as err:
            raise InputError(path, f"not valid JSON ({err})") from None
    return found


def flatten(params: dict, prefix: str = "") -> dict[str, str]:
    """Nested dicts -> ``a.b`` keys with short string values (MLflow params are flat strings)."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
            flat[name] = text[:MAX_PARAM_LENGTH]
    return flat


def iteration_metrics(history: list[dict]) -> list[tuple[str, float, int]]:
    """``(name, value, step)``: the chosen (best) candidate of every iteration, step = iteration."""
    out = []
    for row in history:
        if not row.get("chosen"):
            continue
        for name, key in (("best_val_loss", "val_loss"), ("best_val_pearson", "val_pearson"),
                          ("best_val_auprc", "val_auprc"), ("best_parameters", "parameters")):
            if row.get(key) is not None:
                out.append((name, float(row[key]), int(row["iteration"])))
    return out


def render_model_card(search: dict, params: dict, extra: str = "") -> str:
    """A short markdown card: what the model is, what it was trained on, how good it is."""
    summary = search["summary"]
    lines = [
        "# atacdenoise model card", "",
        f"- architecture space: {search['config'].get('space')}",
        f"- parameters: {summary.get('best_parameters')}",
        f"- validation loss: {summary.get('best_val_loss')}",
        f"- validation Pearson: {summary.get('best_val_pearson')}",
        f"- validation AUPRC: {summary.get('best_val_auprc')}",
        f"- NASH iterations finished: {summary.get('iterations_finished')}, "
        f"candidates trained: {summary.get('candidates_trained')}", "",
        "## Data and input contract", "",
        "`data.training`: what the search trained on; `data.pairs` and the `data.*` after it: the windows "
        "that gave the contract and the parity check.", "",
        *[f"- {key}: {value}" for key, value in flatten(params).items()], "",
        "## Intended use", "",
        "Denoise shallow ATAC-seq coverage with `atacdenoise denoise`, which reads the input contract "
        "(bin size, window, normalisation, genome, chromosome naming) from the ONNX file itself. "
        "Predictions outside the training depth range and genome are not validated.",
    ]
    return "\n".join(lines + ([extra] if extra else [])) + "\n"


def log_search(
    search_dir: str | os.PathLike,
    tracking_uri: str,
    experiment: str = "atacdenoise-search",
    params: dict | None = None,
    attempts: int = 5,
    backoff: float = 1.0,
    tags: dict[str, str] | None = None,
    terminate: bool = True,
    started: list[str] | None = None,
    progress=None,
) -> str:
    """One MLflow run for the search (params, per-iteration metrics, artifacts) and a nested run per child.

    ``params`` adds what the search folder does not know (representation, bin
    size, window, data, depths). Returns the parent run id. ``tags`` go on
    every run; ``terminate=False`` leaves the parent RUNNING (the caller ends
    it); ``started`` collects the ids of the runs created, for cleanup;
    ``progress()`` is called after each run and artifact logged.
    """
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    search_dir = Path(search_dir)
    search = read_search(search_dir)
    wait_for_tracking(tracking_uri, attempts, backoff)
    client = MlflowClient(tracking_uri)
    experiment_id = experiment_id_named(client, experiment)
    all_params = {**(params or {}), "search": search["summary"].get("settings", {}), "architecture": search["config"]}

    started = [] if started is None else started
    run = client.create_run(experiment_id, run_name=f"search-{search_dir.name}",
                            tags={"atacdenoise.kind": "search", "atacdenoise.search_dir": str(search_dir.resolve()),
                                  **(tags or {})})
    run_id = run.info.run_id
    started.append(run_id)
    now = int(time.time() * 1000)
    client.log_batch(run_id, params=[Param(k, v) for k, v in flatten(all_params).items()],
                     metrics=[Metric(n, v, now, s) for n, v, s in iteration_metrics(search["history"])])
    progress = progress or (lambda: None)
    _log_children(client, experiment_id, run_id, search["history"], tags or {}, started, progress)
    for name in ("history.jsonl", "summary.json", "best_model.json", "search.png"):
        if (search_dir / name).is_file():
            client.log_artifact(run_id, str(search_dir / name), artifact_path="search")
            progress()
    client.log_text(run_id, render_model_card(search, params or {}), "model_card.md")
    if terminate:
        client.set_terminated(run_id)
    return run_id


def experiment_id_named(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found else client.create_experiment(name)


def _log_children(client, experiment_id: str, parent_id: str, history: list[dict], tags: dict[str, str],
                  started: list[str], progress) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    for row in history:
        if row.get("is_parent"):
            continue  # the parent's row repeats a model already logged as a child
        child = client.create_run(experiment_id, run_name=f"iter{row['iteration']}-child{row['child']}",
                                  tags={"mlflow.parentRunId": parent_id, "atacdenoise.kind": "child",
                                        "atacdenoise.chosen": str(bool(row.get("chosen"))), **tags})
        started.append(child.info.run_id)
        progress()
        fault_point("run-logging")
        metrics = [Metric(key, float(row[key]), now, 0)
                   for key in ("train_loss", "val_loss", "val_pearson", "val_auprc", "parameters", "seconds")
                   if row.get(key) is not None]
        params = [Param("iteration", str(row["iteration"])), Param("child", str(row["child"])),
                  Param("morphisms", json.dumps(row.get("morphisms", []))[:MAX_PARAM_LENGTH])]
        client.log_batch(child.info.run_id, params=params, metrics=metrics)
        client.set_terminated(child.info.run_id)
