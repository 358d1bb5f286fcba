"""Register a finished search as an ONNX model, promote it by alias, compare champion and challenger.

Registration refuses any export that fails the PyTorch parity check. Every
model version carries tags (genome, bin size, window, representation, depth
range, training data, validation metrics) and a markdown model card.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from atacdenoise.denoise.contract import ModelContract, naming_style
from atacdenoise.errors import InputError
from atacdenoise.tracks.depth import REFERENCE_DENSITY
from atacdenoise.registry.tracking import log_search, read_search, render_model_card, wait_for_tracking

DEFAULT_NAME = "atac-denoiser"
PARITY_WINDOWS = 64


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
) -> dict:
    """Log the search folder, export its best model to ONNX and register it; return ``{"version", "run_id", ...}``.

    ``data`` is a pairs file (e.g. the search's ``val.npz``): its metadata
    gives the input contract and its windows the parity check.
    """
    from atacdenoise.search.history import load_search_model

    search = read_search(search_dir)
    model = load_search_model(search_dir)
    return register_model(model, tracking_uri, name=name, search_dir=search_dir, data=data, genome=genome,
                          experiment=experiment, attempts=attempts, backoff=backoff, search=search)


def register_model(model, tracking_uri: str, name: str = DEFAULT_NAME, search_dir=None, data=None,
                   genome: str = "unknown", experiment: str = "atacdenoise-search", attempts: int = 5,
                   backoff: float = 1.0, search: dict | None = None) -> dict:
    """Export ``model`` (checked for parity), log ``search_dir`` and register the ONNX file under ``name``."""
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
        wait_for_tracking(tracking_uri, attempts, backoff)
        params = {"contract": contract.to_metadata(), "data": _data_params(data, meta)}
        run_id = log_search(search_dir, tracking_uri, experiment, params, attempts, backoff) if search_dir else None
        version = _log_onnx_model(onnx.load(str(onnx_path)), tracking_uri, name, run_id, experiment, contract,
                                  windows)
    tags = _version_tags(contract, meta, search, data, parity)
    card = render_model_card(search, params) if search else f"# {name}\n\nRegistered without a search folder.\n"
    _tag_version(tracking_uri, name, version, tags, card)
    return {"name": name, "version": version, "run_id": run_id, "parity_max_abs_diff":
            max(parity.max_abs_diff_signal, parity.max_abs_diff_logits)}


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


def _log_onnx_model(proto, tracking_uri, name, run_id, experiment, contract: ModelContract, windows) -> str:
    import mlflow
    import mlflow.onnx
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    import onnxruntime as ort

    shape = (2, contract.window_bins) if contract.input_channels == 1 else (2, contract.input_channels,
                                                                             contract.window_bins)
    example = (windows[:2] if windows is not None else np.zeros(shape)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = dict(zip(("signal", "peak_logits"), session.run(None, {"x": example})))
    mlflow.set_tracking_uri(tracking_uri)
    if run_id is None:
        mlflow.set_experiment(experiment)
    try:
        with mlflow.start_run(run_id=run_id):
            info = mlflow.onnx.log_model(proto, name="model", signature=infer_signature(example, outputs),
                                         input_example=example, registered_model_name=name,
                                         metadata=contract.to_metadata(), save_as_external_data=False)
    except MlflowException as err:
        raise InputError(tracking_uri, f"registering {name!r} failed: {str(err).splitlines()[0][:300]}") from None
    return str(info.registered_model_version)


def _version_tags(contract: ModelContract, meta, search, data, parity) -> dict[str, str]:
    summary = (search or {}).get("summary", {})
    depths = (meta or {}).get("depths")
    return {
        "genome": contract.genome, "bin_size": str(contract.bin_size), "window_bins": str(contract.window_bins),
        "target_bins": str(contract.target_bins), "representation": contract.representation,
        "space": contract.space, "chrom_naming": contract.chrom_naming,
        "genome_channels": ",".join(f"{c.name}:{c.render}" for c in contract.channel_specs) or "none",
        "input_depth_range": f"{min(depths)}-{max(depths)} of the noisy library" if depths else "unknown",
        "training_data": os.fspath(data) if data else "unknown",
        "val_loss": str(summary.get("best_val_loss")), "val_pearson": str(summary.get("best_val_pearson")),
        "val_auprc": str(summary.get("best_val_auprc")),
        "onnx_parity_max_abs_diff": f"{max(parity.max_abs_diff_signal, parity.max_abs_diff_logits):.3g}",
    }


def _tag_version(tracking_uri, name, version, tags: dict[str, str], card: str) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.update_model_version(name, version, description=card)


def promote(tracking_uri: str, name: str, version: str | int, alias: str = "champion",
            attempts: int = 5, backoff: float = 1.0) -> None:
    """Point ``alias`` at ``version`` (the previous holder loses it)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    wait_for_tracking(tracking_uri, attempts, backoff)
    client = MlflowClient(tracking_uri)
    try:
        client.get_model_version(name, str(version))
        client.set_registered_model_alias(name, alias, str(version))
    except MlflowException as err:
        raise InputError(f"models:/{name}/{version}", f"cannot promote: {str(err).splitlines()[0][:300]}") from None


def evaluate_onnx(denoiser, pairs: dict, batch_size: int = 64) -> dict[str, float | None]:
    """MSE and Pearson of the signal, AUPRC of the peak probability, on held-out windows."""
    from atacdenoise.evaluate.metrics import auprc, pearson

    signal, prob = denoiser.predict(pairs["inputs"], batch_size)
    targets = pairs["targets"]
    return {"mse": float(np.mean((signal - targets) ** 2, dtype=np.float64)), "pearson": pearson(signal, targets),
            "auprc": auprc(prob, pairs["peaks"])}


def compare(tracking_uri: str, name: str, challenger_version: str | int, data: str | os.PathLike,
            alias: str = "champion", batch_size: int = 64) -> dict[str, dict]:
    """Evaluate ``NAME@ALIAS`` and ``NAME/VERSION`` on the same windows; return ``{label: metrics}``."""
    from atacdenoise.denoise.onnx_runner import load_denoiser

    pairs = _load_pairs(data)
    results = {}
    for label, uri in ((f"champion (@{alias})", f"models:/{name}@{alias}"),
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
