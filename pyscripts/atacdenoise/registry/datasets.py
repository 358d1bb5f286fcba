"""The training and validation data of a registered model, logged as MLflow dataset inputs of its run.

The digests are the search's own content fingerprints (``search/nash.py``
``fingerprint``, recorded in ``summary.json`` settings when it trained), so a
dataset says what the model was trained on even if the file has changed or
gone since; the profile adds the file's sha256 as found at registration and
the number of windows (``search_windows``: as many as the search used, from
its summary; ``windows``: in the pairs file given to the registration).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

TRAINING, VALIDATION, PARITY = "training", "validation", "parity-check"


@dataclass(frozen=True)
class DataRecord:
    """One data set a model version depends on; ``context`` is MLflow's ``mlflow.data.context`` tag."""

    context: str
    path: str | None
    digest: str
    profile: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else f"{self.context}-data"


def data_records(search: dict | None, data, pairs: dict | None) -> list[DataRecord]:
    """The search's training and validation data, and ``data`` (the contract/parity pairs) when it differs.

    ``data`` is logged as the validation data when the search recorded none,
    else as the parity-check data unless its content is the search's own
    validation data (then its current path names that record).
    """
    summary = (search or {}).get("summary", {})
    settings, paths = summary.get("settings", {}), summary.get("data_paths") or {}
    records = []
    if settings.get("train_data"):
        records.append(_record(TRAINING, paths.get("train"), settings["train_data"],
                               {"search_windows": summary.get("n_train")}))
    given = _given_record(data, pairs, settings.get("val_data"))
    if settings.get("val_data") and (given is None or given.context == PARITY):
        records.append(_record(VALIDATION, paths.get("val"), settings["val_data"],
                               {"search_windows": summary.get("n_val")}))
    return records + ([given] if given else [])


def _given_record(data, pairs: dict | None, search_val: str | None) -> DataRecord | None:
    if pairs is None:
        return None
    from atacdenoise.search.nash import fingerprint

    digest = fingerprint(pairs)
    context = VALIDATION if search_val in (None, digest) else PARITY
    return _record(context, os.path.abspath(data), digest, {"windows": int(len(pairs["inputs"]))})


def _record(context: str, path: str | None, digest: str, profile: dict) -> DataRecord:
    found = bool(path) and Path(path).is_file()
    return DataRecord(context, path, digest, {
        **{k: v for k, v in profile.items() if v is not None},
        "digest": "blake2b-128 of the inputs, targets and peaks arrays (as the search fingerprinted them)",
        "sha256_at_registration": _sha256(path) if found else None,
        "file_found_at_registration": found})


def _sha256(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def log_data_inputs(client, run_id: str, records: list[DataRecord]) -> None:
    """Attach ``records`` to the run as dataset inputs (MLflow's Datasets panel), each with its context."""
    if not records:
        return
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for record in records:  # source as mlflow.data's LocalArtifactDatasetSource writes it
        dataset = Dataset(name=record.name, digest=record.digest, source_type="local",
                          source=json.dumps({"uri": record.path or "unknown"}), profile=json.dumps(record.profile))
        inputs.append(DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, record.context)]))
    client.log_inputs(run_id, datasets=inputs)


def training_data_tag(records: list[DataRecord]) -> str:
    """The ``training_data`` version tag: the training file's path (or why it is unknown)."""
    training = next((r for r in records if r.context == TRAINING), None)
    if training is None:
        return "unknown (no search folder recorded it)"
    return training.path or f"unknown path (content digest {training.digest})"
