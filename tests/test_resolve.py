"""`registry resolve`: models:/NAME@ALIAS pinned to a version and its ONNX sha256 (the pipeline's RESOLVE_MODEL)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from atacdenoise.errors import InputError
from atacdenoise.registry.resolve import parse_model_uri, resolve_model

pytest.importorskip("mlflow")
onnx = pytest.importorskip("onnx")


def tiny_onnx(scale: float) -> "onnx.ModelProto":
    """y = scale * x: two versions differ in their weights, so in their sha256."""
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [scale])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict:
    """A SQLite registry with two versions of 'tiny' and the alias champion on version 1."""
    import mlflow
    import mlflow.onnx
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        experiment = mlflow.create_experiment("resolve", artifact_location=(root / "artifacts").as_uri())
        for scale in (1.0, 2.0):
            with mlflow.start_run(experiment_id=experiment):
                mlflow.onnx.log_model(tiny_onnx(scale), name="model", registered_model_name="tiny",
                                      save_as_external_data=False)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    client = MlflowClient(uri, registry_uri=uri)
    client.set_registered_model_alias("tiny", "champion", "1")
    return {"uri": uri, "client": client, "root": root}


def test_parse_model_uri():
    assert parse_model_uri("models:/atac-denoiser@champion") == ("atac-denoiser", "champion", None)
    assert parse_model_uri("models:/atac-denoiser/7") == ("atac-denoiser", None, "7")
    for bad in ("models:/x", "model.onnx", "models:/x@", "models:/x/v1"):
        with pytest.raises(InputError, match="expected models:/NAME@ALIAS"):
            parse_model_uri(bad)


def onnx_sha256(registry: dict, version: str) -> str:
    """The sha256 of the .onnx file the registry stores for a version."""
    source = registry["client"].get_model_version_download_uri("tiny", version)
    found = sorted(Path(source.removeprefix("file://")).rglob("*.onnx"))
    return hashlib.sha256(found[0].read_bytes()).hexdigest()


def test_alias_resolves_to_its_version_and_follows_a_move(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = resolve_model("models:/tiny@champion", registry["uri"])
    assert not (tmp_path / "mlflow.db").exists()  # MLflow's default store is left alone
    assert first["version"] == "1" and first["resolved_uri"] == "models:/tiny/1" and first["alias"] == "champion"
    assert first["onnx_sha256"] == onnx_sha256(registry, "1") and first["run_id"]
    # promote version 2: the same reference now pins another version and other weights
    registry["client"].set_registered_model_alias("tiny", "champion", "2")
    try:
        moved = resolve_model("models:/tiny@champion", registry["uri"])
    finally:
        registry["client"].set_registered_model_alias("tiny", "champion", "1")
    assert moved["resolved_uri"] == "models:/tiny/2" and moved["onnx_sha256"] == onnx_sha256(registry, "2")
    assert moved["onnx_sha256"] != first["onnx_sha256"]
    # a version URI resolves to itself
    assert resolve_model("models:/tiny/2", registry["uri"])["onnx_sha256"] == moved["onnx_sha256"]


def test_unknown_alias_or_version_is_one_clear_error(registry, monkeypatch):
    with pytest.raises(InputError, match="has no alias 'nope'"):
        resolve_model("models:/tiny@nope", registry["uri"])
    with pytest.raises(InputError, match="has no version 9"):
        resolve_model("models:/tiny/9", registry["uri"])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(InputError, match="MLFLOW_TRACKING_URI"):
        resolve_model("models:/tiny@champion", None)


def test_cli_prints_json_and_saves_the_resolved_onnx(registry, capsys, tmp_path):
    from atacdenoise.cli import main

    main(["registry", "resolve", "models:/tiny@champion", "--tracking-uri", registry["uri"]])
    out = json.loads(capsys.readouterr().out)
    assert out["resolved_uri"] == "models:/tiny/1"
    assert not list(tmp_path.iterdir())
    main(["registry", "resolve", "models:/tiny@champion", "--tracking-uri", registry["uri"],
          "--output", str(tmp_path / "pinned.onnx")])
    assert resolve_module_onnx_is_the_version(tmp_path / "pinned.onnx", onnx_sha256(registry, "1"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pinned.onnx"]  # no temporary left beside it


def resolve_module_onnx_is_the_version(path: Path, sha256: str) -> bool:
    """The saved ONNX file is the registered version's, byte for byte, and ONNX Runtime loads it."""
    import onnxruntime

    onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def test_contract_resolve_model(registry, tmp_path):
    """modules/resolve_model.nf's script, run as Nextflow runs it: the JSON main.nf reads resolved_uri from."""
    from test_nextflow import Runner

    out = Runner(tmp_path).run("resolve_model", ["registry", "resolve"], {},
                               {"meta.id": "tiny@champion", "prefix": "model", "args": "",
                                "model_uri": "models:/tiny@champion", "tracking_uri": registry["uri"]})
    resolved = json.loads(out["model.resolved.json"].read_text())
    assert resolved["resolved_uri"] == "models:/tiny/1" and len(resolved["onnx_sha256"]) == 64
    main = (Path(__file__).resolve().parents[1] / "main.nf").read_text()
    assert "def resolved = new groovy.json.JsonSlurper().parse(json)" in main and "return resolved.resolved_uri" in main
    assert "ch_model_file = RESOLVE_MODEL.out.resolved.join(RESOLVE_MODEL.out.onnx)" in main
    assert "DENOISE_SAMPLES(PREPROCESS.out.insertions, ch_model_file, ''," in main
    assert resolve_module_onnx_is_the_version(out["model.onnx"], resolved["onnx_sha256"])
    assert "cache false" in (Path(__file__).resolve().parents[1] / "modules" / "resolve_model.nf").read_text()
