"""Pin a registry model reference: ``models:/NAME@ALIAS`` -> one version and its ONNX sha256.

An alias moves (``registry promote``); a version does not. The pipeline's RESOLVE_MODEL step calls
:func:`resolve_model` before DENOISE and hands DENOISE that version's ONNX file, so Nextflow's ``-resume``
re-runs denoising exactly when the alias points somewhere else (other weights), DENOISE's image needs no
MLflow, and the published resolution says which version (and which weights, by sha256) made the tracks.
``models:/NAME/VERSION`` resolves to itself (with its sha256), so the step is harmless for pinned references.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from atacdenoise.errors import InputError
from atacdenoise.io.atomic import atomic_path

_URI = re.compile(r"^models:/(?P<name>[^/@\s]+)(?:@(?P<alias>[^/@\s]+)|/(?P<version>\d+))$")


def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """``(name, alias, version)`` of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` (one of the two is None)."""
    match = _URI.match(model_uri)
    if not match:
        raise InputError(model_uri, "expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return match.group("name"), match.group("alias"), match.group("version")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(model_uri: str, tracking_uri: str | None = None, onnx_output: str | os.PathLike | None = None
                  ) -> dict:
    """The concrete version behind ``model_uri`` and the sha256 of its ONNX file.

    Returns ``{"model": model_uri, "name", "alias", "version", "resolved_uri": "models:/NAME/VERSION",
    "run_id", "onnx_sha256"}`` (``alias`` None for a version URI). The ONNX is downloaded once to hash it
    from the version's own artifact location, so nothing touches MLflow's default ``./mlflow.db``; with
    ``onnx_output`` it is kept there (the pipeline's DENOISE reads that file and needs no MLflow)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from atacdenoise.io.tracking_server import environment

    name, alias, version = parse_model_uri(model_uri)
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise InputError(model_uri, "set --tracking-uri or MLFLOW_TRACKING_URI to resolve a registered model")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        found = (client.get_model_version_by_alias(name, alias) if alias
                 else client.get_model_version(name, version))
    except MlflowException as err:
        what = f"alias {alias!r}" if alias else f"version {version}"
        raise InputError(model_uri, f"registered model {name!r} has no {what} ({str(err).splitlines()[0][:300]})"
                         ) from None
    resolved = f"models:/{name}/{found.version}"
    source = client.get_model_version_download_uri(name, found.version)
    with environment({"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}), \
            tempfile.TemporaryDirectory(prefix="atacdenoise-resolve-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp,
                                                             tracking_uri=tracking_uri))
        except MlflowException as err:
            raise InputError(resolved, f"cannot download {source} ({str(err).splitlines()[0][:300]})") from None
        found_onnx = sorted(local.rglob("*.onnx")) if local.is_dir() else [local]
        if not found_onnx or found_onnx[0].suffix != ".onnx":
            raise InputError(resolved, "registered model has no .onnx file (was it logged with the onnx flavor?)")
        sha256 = sha256_of(found_onnx[0])
        if onnx_output is not None:
            with atomic_path(onnx_output) as tmp_onnx:
                shutil.copyfile(found_onnx[0], tmp_onnx)
    return {"model": model_uri, "name": name, "alias": alias, "version": str(found.version),
            "resolved_uri": resolved, "run_id": found.run_id, "onnx_sha256": sha256}
