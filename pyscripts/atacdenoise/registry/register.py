"""Register a finished search as an ONNX model, promote it by alias, compare champion and challenger.

Registration refuses any export that fails the PyTorch parity check. Every
model version carries tags (genome, bin size, window, representation, depth
range, training data, validation metrics) and a markdown model card.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atacdenoise.denoise.contract import ModelContract, naming_style
from atacdenoise.errors import InputError
from atacdenoise.io.tracking_server import DeadlinePassed, quick_requests, registry_deadline, wait_for_tracking
from atacdenoise.registry.datasets import DataRecord, data_records, log_data_inputs, training_data_tag
from atacdenoise.registry.tracking import (
    DIGEST_TAG, experiment_id_named, fault_before, fault_point, log_search, read_search, render_model_card,
)
from atacdenoise.tracks.depth import REFERENCE_DENSITY

DEFAULT_NAME = "atac-denoiser"
DEFAULT_TIMEOUT = 30.0  # seconds without progress before a registration gives up
PARITY_WINDOWS = 64
DESCRIPTION_HEADER = "Denoises shallow ATAC-seq"  # a registered-model description atacdenoise wrote (and may rewrite)


@dataclass(frozen=True)
class Payload:
    """What one registration writes: the exported model and everything said about it."""

    proto: object  # the ONNX ModelProto
    contract: ModelContract
    windows: np.ndarray | None  # input example
    digest: str
    tags: dict[str, str]
    card: str
    records: list[DataRecord]  # training/validation data, logged as dataset inputs
    step: int  # the search iteration that produced the model: the logged model takes the run's metrics there
    parameters: int


def contract_from_pairs(space: str, meta: dict | None, genome: str, window_bins: int, target_bins: int) -> ModelContract:
    """The input contract of a model trained on pairs described by ``meta`` (``search/data.py``)."""
    meta = meta or {}
    chroms = meta.get("chroms") or []
    return ModelContract(space=space, window_bins=int(meta.get("window_bins", window_bins)),
                         target_bins=int(meta.get("target_bins", target_bins)),
                         bin_size=int(meta.get("bin_size", 25)), representation=meta.get("representation", "coverage"),
                         extend=int(meta.get("extend", 100)), genome=genome,
                         # pairs made before density normalisation scaled per million insertions of the file
                         input_normalisation=meta.get("normalisation", "cpm" if meta else "density"),
                         reference_density=float(meta.get("reference_density", REFERENCE_DENSITY)),
                         chrom_naming=naming_style(chroms) if chroms else "chr",
                         channels=json.dumps(meta.get("channels", [])),
                         sequence_md5=json.dumps(meta.get("sequence_md5", {})),
                         masks=json.dumps(meta.get("masks", [])))


def register_search(
    search_dir: str | os.PathLike,
    tracking_uri: str,
    name: str = DEFAULT_NAME,
    data: str | os.PathLike | None = None,
    genome: str = "unknown",
    experiment: str = "atacdenoise-search",
    attempts: int = 5,
    backoff: float = 1.0,
    timeout: float = DEFAULT_TIMEOUT,
    alias: str | None = None,
) -> dict:
    """Log the search folder, export its best model to ONNX and register it; return ``{"version", "run_id", ...}``.

    ``data`` is a pairs file (e.g. the search's ``val.npz``): its metadata
    gives the input contract and its windows the parity check. Idempotent:
    the version is keyed on the sha256 of the best checkpoint, so running it
    again on the same folder completes a half-made version instead of adding
    one. Gives up after ``timeout`` seconds with one InputError.
    """
    from atacdenoise.search.history import load_search_model

    search = read_search(search_dir)
    model = load_search_model(search_dir)
    return register_model(model, tracking_uri, name=name, search_dir=search_dir, data=data, genome=genome,
                          experiment=experiment, attempts=attempts, backoff=backoff, search=search,
                          timeout=timeout, alias=alias, digest=search_digest(search_dir))


def search_digest(search_dir: str | os.PathLike) -> str:
    """sha256 of the search's best model (architecture JSON and checkpoint): the registration's identity."""
    sha = hashlib.sha256()
    for name in ("best_model.json", "best_model.pt"):
        with open(Path(search_dir) / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()


def register_model(model, tracking_uri: str, name: str = DEFAULT_NAME, search_dir=None, data=None,
                   genome: str = "unknown", experiment: str = "atacdenoise-search", attempts: int = 5,
                   backoff: float = 1.0, search: dict | None = None, timeout: float = DEFAULT_TIMEOUT,
                   alias: str | None = None, digest: str | None = None) -> dict:
    """Export ``model`` (checked for parity), log ``search_dir`` and register the ONNX file under ``name``.

    ``digest`` keys the registration (default: sha256 of the exported ONNX):
    a version already tagged with it is completed (tags, card, alias, its
    run ended) rather than registered again; RUNNING runs and PENDING logged
    models a dead attempt left are ended FAILED. It gives up when the server
    makes no progress for ``timeout`` seconds (a dead one: within seconds);
    then the runs this call started are ended FAILED (when the server still
    answers) and one InputError says so.
    """
    import onnx

    from atacdenoise.registry.onnx_export import export_onnx

    pairs = _load_pairs(data) if data else None
    meta = pairs["meta"] if pairs else None
    contract = contract_from_pairs(model.to_config()["space"], meta, genome, model.window_bins, model.target_bins)
    windows = pairs["inputs"][:PARITY_WINDOWS] if pairs else None
    with tempfile.TemporaryDirectory(prefix="atacdenoise-export-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        # Export and parity come first: a bad export must never reach the registry.
        parity = export_onnx(model, onnx_path, contract=contract, check_windows=windows)
        digest = digest or hashlib.sha256(onnx_path.read_bytes()).hexdigest()
        proto = onnx.load(str(onnx_path))
    records = data_records(search, data, pairs)
    training = training_data_tag(records)
    params = {"contract": contract.to_metadata(), "data": {"training": training, **_data_params(data, meta)}}
    tags = {**_version_tags(contract, meta, search, parity), "training_data": training, DIGEST_TAG: digest}
    card = (render_model_card(search, params) if search else f"# {name}\n\nRegistered without a search folder.\n")
    payload = Payload(proto, contract, windows, digest, tags, f"{describe_contract(contract)}\n\n{card}", records,
                      _final_step(search), _count_parameters(model))
    started: list[str] = []
    begun = time.monotonic()
    deadline = None
    try:
        with registry_deadline(timeout) as deadline:
            deadline.stage = "waiting for the server"
            wait_for_tracking(tracking_uri, attempts, backoff, deadline=deadline)
            version, run_id, resumed = _register(payload, tracking_uri, name, search_dir, experiment, params,
                                                 alias, started, deadline, attempts, backoff)
    except InputError:
        _fail_runs(tracking_uri, started)
        raise
    except (DeadlinePassed, Exception) as err:  # noqa: BLE001 - any failure talking to the server
        if not isinstance(err, DeadlinePassed) and not _is_service_error(err):
            _fail_runs(tracking_uri, started)
            raise
        failed = _fail_runs(tracking_uri, started)
        stage = deadline.stage if deadline else "starting"
        reason = (f"no progress for {timeout:g} s" if isinstance(err, DeadlinePassed)
                  else _short(err, tracking_uri))
        marked = f"{failed} of its {len(started)} runs marked FAILED" if started else "no run was started"
        raise InputError(tracking_uri, f"gave up registering {name!r} after {time.monotonic() - begun:.0f} s "
                                       f"(--timeout {timeout:g} s without progress) while {stage}: {reason}; "
                                       f"{marked}; the search folder is untouched: rerun the same command to "
                                       f"complete this registration (no duplicate version is made)") from None
    return {"name": name, "version": version, "run_id": run_id, "resumed": resumed, "model_sha256": digest,
            "parity_max_abs_diff": max(parity.max_abs_diff_signal, parity.max_abs_diff_logits)}


def _register(payload: Payload, tracking_uri, name, search_dir, experiment, params, alias, started, deadline,
              attempts, backoff) -> tuple[str, str | None, bool]:
    """The registration itself, resumable: returns ``(version, run_id, resumed)``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    digest = payload.digest
    deadline.stage = "looking for an earlier attempt"
    found = _find_version(client, name, digest)
    if found is not None:
        version, run_id, resumed = str(found.version), found.run_id, True
    else:
        _end_orphans(client, experiment, digest)
        deadline.stage = "logging the search runs"
        if search_dir:
            run_id = log_search(search_dir, tracking_uri, experiment, params, attempts, backoff,
                                tags={DIGEST_TAG: digest}, terminate=False, started=started,
                                progress=deadline.progress)
        else:
            experiment_id = experiment_id_named(client, experiment)
            run_id = client.create_run(experiment_id, run_name=f"model-{digest[:12]}",
                                       tags={"atacdenoise.kind": "model", DIGEST_TAG: digest}).info.run_id
            started.append(run_id)
        deadline.stage = "logging the training and validation data"
        log_data_inputs(client, run_id, payload.records)
        deadline.stage = "logging and uploading the model"
        version = _log_onnx_model(payload, tracking_uri, name, run_id)
        resumed = False
        fault_point("version-created")
    deadline.stage = f"completing version {version} (tags, card, description)"
    _tag_version(client, name, version, payload.tags, payload.card)
    _describe_registered_model(client, name, version, payload.contract)
    if alias:
        client.set_registered_model_alias(name, alias, version)
    deadline.stage = "ending the runs"
    _end_orphans(client, experiment, digest, finish=run_id)
    return version, run_id, resumed


def _find_version(client, name: str, digest: str):
    """The version an earlier attempt registered for ``digest``, or None."""
    versions = [v for v in client.search_model_versions(f"name='{name}'")
                if v.tags.get(DIGEST_TAG) == digest and v.status != "FAILED_REGISTRATION"]
    return min(versions, key=lambda v: int(v.version)) if versions else None


def _end_orphans(client, experiment: str, digest: str, finish: str | None = None) -> None:
    """End RUNNING runs of ``digest`` (FINISHED for ``finish``, FAILED for the rest); PENDING logged models FAILED."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.`{DIGEST_TAG}` = '{digest}' and "
                                                                   f"attributes.status = 'RUNNING'")
    for run in runs:
        client.set_terminated(run.info.run_id, "FINISHED" if run.info.run_id == finish else "FAILED")
    if finish is None:
        for logged in client.search_logged_models([found.experiment_id],
                                                  filter_string=f"tags.`{DIGEST_TAG}` = '{digest}'"):
            if str(logged.status) in ("PENDING", "LoggedModelStatus.PENDING"):
                client.finalize_logged_model(logged.model_id, "FAILED")


def _fail_runs(tracking_uri: str, run_ids: list[str]) -> int:
    """Best effort, a few seconds at most: end still-RUNNING runs FAILED; returns how many were ended."""
    if not run_ids:
        return 0
    from mlflow.tracking import MlflowClient

    ended = 0
    with quick_requests(3):
        client = MlflowClient(tracking_uri)
        for run_id in run_ids:
            try:
                if client.get_run(run_id).info.status == "RUNNING":
                    client.set_terminated(run_id, "FAILED")
                ended += 1
            except Exception:  # noqa: BLE001 - the server is gone: the next attempt ends them
                break
    return ended


def _is_service_error(err: BaseException) -> bool:
    import requests
    from mlflow.exceptions import MlflowException

    return isinstance(err, (MlflowException, requests.RequestException, ConnectionError, TimeoutError, OSError))


def _short(err: BaseException, tracking_uri: str) -> str:
    from atacdenoise.io.tracking_server import is_healthy

    if not is_healthy(tracking_uri, timeout=1.0):
        return "the server stopped answering"
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


def export_search(search_dir, output, data=None, genome: str = "unknown", device: str = "cpu") -> dict:
    """Export a search's best model to ONNX with its contract, checked for parity (no registry needed)."""
    from atacdenoise.registry.onnx_export import export_onnx
    from atacdenoise.search.history import load_search_model

    model = load_search_model(search_dir).to(device)
    pairs = _load_pairs(data) if data else None
    meta = pairs["meta"] if pairs else None
    contract = contract_from_pairs(model.to_config()["space"], meta, genome, model.window_bins, model.target_bins)
    windows = pairs["inputs"][:PARITY_WINDOWS] if pairs else None
    parity = export_onnx(model, output, contract=contract, check_windows=windows)
    return {"onnx": os.fspath(output), "device": device, "parity_max_abs_diff":
            max(parity.max_abs_diff_signal, parity.max_abs_diff_logits), "tolerance": parity.tolerance}


def _load_pairs(path):
    from atacdenoise.search.data import load_pairs

    return load_pairs(path)


def _data_params(data, meta: dict | None) -> dict:
    if not meta:
        return {"pairs": "none (parity on synthetic windows)"}
    keep = ("bin_size", "window_bins", "target_bins", "representation", "extend", "chroms", "depths",
            "noisy_insertions", "clean_insertions", "normalisation", "noisy_depth", "clean_depth", "sources")
    return {"pairs": os.fspath(data), **{k: meta[k] for k in keep if k in meta}}


def _log_onnx_model(payload: Payload, tracking_uri, name, run_id) -> str:
    """Log the ONNX model under ``run_id`` and create its version, tagged with its digest from the start.

    The logged model takes the run's metrics at ``payload.step`` (the search
    iteration whose choice is the final model; MLflow's default, step 0, is
    the initial random model's) and its own parameter count.
    """
    import mlflow
    import mlflow.onnx
    from mlflow.entities import Metric
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    import onnxruntime as ort

    proto, contract, windows = payload.proto, payload.contract, payload.windows
    shape = (2, contract.window_bins) if contract.input_channels == 1 else (2, contract.input_channels,
                                                                             contract.window_bins)
    example = (windows[:2] if windows is not None else np.zeros(shape)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = dict(zip(("signal", "peak_logits"), session.run(None, {"x": example})))
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with fault_before(MlflowClient, "log_model_artifacts", "upload"):
        info = mlflow.onnx.log_model(proto, name="model", signature=infer_signature(example, outputs),
                                     input_example=example, registered_model_name=name, run_id=run_id,
                                     metadata=contract.to_metadata(), save_as_external_data=False,
                                     tags={DIGEST_TAG: payload.digest}, await_registration_for=0, step=payload.step,
                                     pip_requirements=mlflow.onnx.get_default_pip_requirements())
    MlflowClient(tracking_uri).log_batch(run_id, metrics=[Metric("parameters", payload.parameters,
                                                                 int(time.time() * 1000), payload.step,
                                                                 model_id=info.model_id)])
    return str(info.registered_model_version)


def _final_step(search: dict | None) -> int:
    """The last iteration with a chosen candidate: the final model's step in the run's metrics (0 without one)."""
    chosen = [int(row["iteration"]) for row in (search or {}).get("history", []) if row.get("chosen")]
    return max(chosen, default=0)


def _count_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def describe_contract(contract: ModelContract) -> str:
    """One paragraph: what the model denoises and the input it expects (the ONNX metadata holds the same)."""
    span = contract.window_bins * contract.bin_size
    names = [spec.name for spec in contract.channel_specs]
    channels = f"; genome channels: {', '.join(names)}" if names else ""
    return (f"{DESCRIPTION_HEADER} {contract.representation} tracks of genome {contract.genome} "
            f"({contract.chrom_naming} chromosome names): input windows of {contract.window_bins} bins of "
            f"{contract.bin_size} bp ({span:,} bp), output the central {contract.target_bins} bins as denoised "
            f"signal and peak logits; input normalisation {contract.input_normalisation} "
            f"(reference density {contract.reference_density:g} insertions per base), insertions extended by "
            f"+-{contract.extend} bp{channels}. `atacdenoise denoise` reads this contract from the ONNX file itself.")


def _describe_registered_model(client, name: str, version: str, contract: ModelContract) -> None:
    """Describe the registered model by its newest version, unless someone else wrote its description."""
    current = client.get_registered_model(name).description or ""
    if current and not current.startswith(DESCRIPTION_HEADER):
        return
    client.update_registered_model(name, description=f"{describe_contract(contract)}\n\nWritten when version {version} "
                                                     f"was registered; each version's tags and card give its "
                                                     f"own contract, training data and validation metrics.")


def _version_tags(contract: ModelContract, meta, search, parity) -> dict[str, str]:
    summary = (search or {}).get("summary", {})
    depths = (meta or {}).get("depths")
    return {
        "genome": contract.genome, "bin_size": str(contract.bin_size), "window_bins": str(contract.window_bins),
        "target_bins": str(contract.target_bins), "representation": contract.representation,
        "space": contract.space, "chrom_naming": contract.chrom_naming,
        "genome_channels": ",".join(f"{c.name}:{c.render}" for c in contract.channel_specs) or "none",
        "input_depth_range": f"{min(depths)}-{max(depths)} of the noisy library" if depths else "unknown",
        "val_loss": str(summary.get("best_val_loss")), "val_pearson": str(summary.get("best_val_pearson")),
        "val_auprc": str(summary.get("best_val_auprc")),
        "onnx_parity_max_abs_diff": f"{max(parity.max_abs_diff_signal, parity.max_abs_diff_logits):.3g}",
    }


def _tag_version(client, name, version, tags: dict[str, str], card: str) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.update_model_version(name, version, description=card)


def promote(tracking_uri: str, name: str, version: str | int, alias: str = "champion",
            attempts: int = 5, backoff: float = 1.0, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Point ``alias`` at ``version`` (the previous holder loses it)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        with registry_deadline(timeout):
            wait_for_tracking(tracking_uri, attempts, backoff)
            client = MlflowClient(tracking_uri)
            client.get_model_version(name, str(version))
            client.set_registered_model_alias(name, alias, str(version))
    except MlflowException as err:
        raise InputError(f"models:/{name}/{version}", f"cannot promote: {str(err).splitlines()[0][:300]}") from None
    except DeadlinePassed:
        raise InputError(tracking_uri, f"gave up promoting {name} version {version}: no progress for "
                                       f"{timeout:g} s") from None


def evaluate_onnx(denoiser, pairs: dict, batch_size: int = 64) -> dict[str, float | None]:
    """MSE and Pearson of the signal, AUPRC of the peak probability, on held-out windows."""
    from atacdenoise.metrics import auprc, pearson

    signal, prob = denoiser.predict(pairs["inputs"], batch_size)
    targets = pairs["targets"]
    return {"mse": float(np.mean((signal - targets) ** 2, dtype=np.float64)), "pearson": pearson(signal, targets),
            "auprc": auprc(prob, pairs["peaks"])}


def compare(tracking_uri: str, name: str, challenger_version: str | int, data: str | os.PathLike,
            alias: str = "champion", batch_size: int = 64) -> dict[str, dict]:
    """Evaluate ``NAME@ALIAS`` and ``NAME/VERSION`` on the same windows; return ``{label: metrics}``."""
    from mlflow.tracking import MlflowClient

    from atacdenoise.denoise.onnx_runner import load_denoiser

    pairs = _load_pairs(data)
    results = {}
    try:  # name the champion's version: an alias moves, a table read later should say what it compared
        client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        champion = f"v{client.get_model_version_by_alias(name, alias).version}"
    except Exception:  # noqa: BLE001 -- a missing alias gets its clear error from load_denoiser just below
        champion = "version unknown"
    for label, uri in ((f"champion (@{alias}, {champion})", f"models:/{name}@{alias}"),
                       (f"challenger (v{challenger_version})", f"models:/{name}/{challenger_version}")):
        denoiser = load_denoiser(uri, tracking_uri)
        _check_model_fits_pairs(denoiser.contract, pairs["meta"], uri, data)
        results[label] = evaluate_onnx(denoiser, pairs, batch_size)
    return results


def _check_model_fits_pairs(contract: ModelContract, meta: dict, uri: str, data) -> None:
    for key in ("bin_size", "window_bins", "target_bins"):
        if key in meta and int(meta[key]) != getattr(contract, key):
            raise InputError(data, f"{key} {meta[key]} differs from {getattr(contract, key)} of {uri}")


def format_comparison(results: dict[str, dict]) -> str:
    """A plain-text table: one row per model, lower MSE and higher Pearson/AUPRC are better."""
    def cell(value):
        return "n/a" if value is None else f"{value:.4g}"

    rows = [("model", "MSE", "Pearson", "AUPRC")]
    rows += [(label, cell(m["mse"]), cell(m["pearson"]), cell(m["auprc"])) for label, m in results.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(value.ljust(width) for value, width in zip(row, widths)) for row in rows)
