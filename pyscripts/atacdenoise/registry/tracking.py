"""Log a finished search to MLflow: one run per search, one nested run per child.

The search writes its results to disk first (``history.jsonl``, ``summary.json``,
``best_model.*``, ``search.png``); logging reads that folder, so an unreachable
server never costs a search its results: ``atacdenoise registry register DIR``
logs it later.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path

from atacdenoise.errors import InputError
from atacdenoise.registry.server import is_healthy

MAX_PARAM_LENGTH = 500  # MLflow accepts longer values, but long ones are unreadable in the UI


def wait_for_tracking(tracking_uri: str, attempts: int = 5, backoff: float = 1.0) -> None:
    """Retry ``GET /health`` with exponential backoff; one clear InputError when it never answers.

    Only http(s) URIs are probed; a local ``sqlite:``/``file:`` store needs no server.
    """
    if urllib.parse.urlparse(tracking_uri).scheme not in ("http", "https"):
        return
    waited = 0.0
    for attempt in range(attempts):
        if is_healthy(tracking_uri):
            return
        if attempt < attempts - 1:
            delay = backoff * 2**attempt
            time.sleep(delay)
            waited += delay
    raise InputError(tracking_uri, f"MLflow tracking server unreachable after {attempts} attempts over "
                                   f"{waited:.1f} s; the search folder is untouched, register it later with "
                                   f"'atacdenoise registry register DIR'")


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
        "## Training data and input contract", "",
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
) -> str:
    """One MLflow run for the search (params, per-iteration metrics, artifacts) and a nested run per child.

    ``params`` adds what the search folder does not know (representation, bin
    size, window, data, depths). Returns the parent run id.
    """
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    search_dir = Path(search_dir)
    search = read_search(search_dir)
    wait_for_tracking(tracking_uri, attempts, backoff)
    client = MlflowClient(tracking_uri)
    experiment_id = _experiment_id(client, experiment)
    all_params = {**(params or {}), "search": search["summary"].get("settings", {}), "architecture": search["config"]}

    run = client.create_run(experiment_id, run_name=f"search-{search_dir.name}",
                            tags={"atacdenoise.kind": "search", "atacdenoise.search_dir": str(search_dir.resolve())})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, params=[Param(k, v) for k, v in flatten(all_params).items()],
                     metrics=[Metric(n, v, now, s) for n, v, s in iteration_metrics(search["history"])])
    _log_children(client, experiment_id, run_id, search["history"])
    for name in ("history.jsonl", "summary.json", "best_model.json", "search.png"):
        if (search_dir / name).is_file():
            client.log_artifact(run_id, str(search_dir / name), artifact_path="search")
    client.log_text(run_id, render_model_card(search, params or {}), "model_card.md")
    client.set_terminated(run_id)
    return run_id


def _experiment_id(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found else client.create_experiment(name)


def _log_children(client, experiment_id: str, parent_id: str, history: list[dict]) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    for row in history:
        if row.get("is_parent"):
            continue  # the parent's row repeats a model already logged as a child
        child = client.create_run(experiment_id, run_name=f"iter{row['iteration']}-child{row['child']}",
                                  tags={"mlflow.parentRunId": parent_id, "atacdenoise.kind": "child",
                                        "atacdenoise.chosen": str(bool(row.get("chosen")))})
        metrics = [Metric(key, float(row[key]), now, 0)
                   for key in ("train_loss", "val_loss", "val_pearson", "val_auprc", "parameters", "seconds")
                   if row.get(key) is not None]
        params = [Param("iteration", str(row["iteration"])), Param("child", str(row["child"])),
                  Param("morphisms", json.dumps(row.get("morphisms", []))[:MAX_PARAM_LENGTH])]
        client.log_batch(child.info.run_id, params=params, metrics=metrics)
        client.set_terminated(child.info.run_id)
