"""registry/: real MLflow server (SQLite backend) with artifacts in a real SeaweedFS S3 store. No mocks.

One SeaweedFS and one MLflow server start per module (127.0.0.1, free ports)
and are killed at teardown. The search folder is a test fixture: a tiny
hilbert2d model with fake history rows, labelled as such in the files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
mlflow = pytest.importorskip("mlflow")
boto3 = pytest.importorskip("boto3")

from atacdenoise.denoise import denoise  # noqa: E402
from atacdenoise.denoise.onnx_runner import load_denoiser  # noqa: E402
from atacdenoise.errors import InputError  # noqa: E402
from atacdenoise.registry.onnx_export import ParityError, check_parity, export_onnx  # noqa: E402
from atacdenoise.registry.register import (  # noqa: E402
    compare, format_comparison, promote, register_model, register_search,
)
from atacdenoise.registry.server import free_port, start_server, stop_process  # noqa: E402
from atacdenoise.registry.tracking import log_search  # noqa: E402

ACCESS, SECRET, BUCKET = "atacdenoise-test", "atacdenoise-secret", "mlflow"
WINDOW, TARGET = 256, 64
NAME = "atac-denoiser-test"
pytestmark = pytest.mark.skipif(shutil.which("weed") is None, reason="SeaweedFS 'weed' is not installed")


# ---------------------------------------------------------------- real services

@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """SeaweedFS (master, volume, filer, S3) on free ports, with one identity from an s3 config json."""
    root = tmp_path_factory.mktemp("seaweed")
    config = root / "s3.json"
    config.write_text(json.dumps({"identities": [{"name": "test", "credentials": [
        {"accessKey": ACCESS, "secretKey": SECRET}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    (root / "data").mkdir()
    command = ["weed", "server", "-dir", str(root / "data"), "-ip", "127.0.0.1", "-ip.bind", "127.0.0.1",
               "-master.port", str(ports["master"]), "-master.port.grpc", str(grpc["master"]),
               "-volume.port", str(ports["volume"]), "-volume.port.grpc", str(grpc["volume"]),
               "-filer.port", str(ports["filer"]), "-filer.port.grpc", str(grpc["filer"]),
               "-s3", "-s3.port", str(ports["s3"]), "-s3.port.grpc", str(grpc["s3"]), "-s3.port.iceberg", "0",
               "-s3.port.lance", "0", "-s3.config", str(config), "-master.telemetry=false", "-volume.max", "20"]
    # Not fewer: a minute after start the filer's own log takes up to 7 volumes (collection ""), and with 5
    # slots the bucket's first upload then finds none ("No writable volumes"): a registration slower than that
    # failed. Volumes are sparse files.
    with open(root / "weed.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS, aws_secret_access_key=SECRET,
                          region_name="us-east-1")
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded wait: the bucket can be created once the filer and a volume are up
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"SeaweedFS did not start: {(root / 'weed.log').read_text()[-1500:]}")
                time.sleep(0.5)
        yield {"endpoint": endpoint, "client": client,
               "env": {"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET,
                       "AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": endpoint}}
    finally:
        stop_process(process, grace=2)


@pytest.fixture(scope="module")
def server(s3, tmp_path_factory):
    """mlflow server: SQLite backend, artifacts proxied to the SeaweedFS bucket."""
    running = start_server(tmp_path_factory.mktemp("mlflow"), artifacts=f"s3://{BUCKET}/artifacts", env=s3["env"],
                           timeout=120)
    try:
        yield running.url
    finally:
        running.stop(grace=3)


# ---------------------------------------------------------------- fixtures: a tiny search and data

def tiny_model(seed: int = 0):
    from atacdenoise.models import build_model
    from atacdenoise.models.hilbert2d import conv_layer, dense_layer, make_config

    torch.manual_seed(seed)
    return build_model(make_config([conv_layer(4, 3), dense_layer(16)], WINDOW, TARGET)).eval()


def make_search_dir(path: Path, seed: int = 0, train: Path | None = None, val: Path | None = None) -> Path:
    """A search folder as nash.py writes it. TEST FIXTURE: the history rows are made up, not a real search.

    With ``train`` and ``val`` pairs files the summary records them as the search does (fingerprints, paths).
    """
    path.mkdir(parents=True)
    model = tiny_model(seed)
    (path / "best_model.json").write_text(json.dumps(model.to_config()))
    torch.save(model.state_dict(), path / "best_model.pt")
    rows = []
    for iteration in range(3):
        for child in range(3):
            loss = 1.0 / (1 + iteration) + 0.1 * child
            rows.append({"iteration": iteration, "child": child, "morphisms": ["test-fixture"], "parameters": 1000 + child,
                         "train_loss": loss, "val_loss": loss, "val_pearson": 0.5 + 0.1 * iteration,
                         "val_auprc": None if iteration == 0 else 0.3, "seconds": 0.0,
                         "is_parent": child == 0 and iteration > 0, "chosen": child == 0, "note": "test fixture"})
    (path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text(json.dumps({
        "note": "test fixture, not a real search", "best_val_loss": 1 / 3, "best_val_pearson": 0.7,
        "best_val_auprc": 0.3, "best_parameters": 1000, "best_config": model.to_config(), "iterations_finished": 2,
        "done": True, "candidates_trained": 7, "settings": {"space": "hilbert2d", "iterations": 2, "children": 3},
        **(_recorded_data(train, val) if train else {})}))
    return path


def _recorded_data(train: Path, val: Path) -> dict:
    """What run_search adds to summary.json about its data (fingerprints in settings, paths beside them)."""
    from atacdenoise.search.data import load_pairs
    from atacdenoise.search.nash import fingerprint

    return {"n_train": len(load_pairs(train)["inputs"]), "n_val": len(load_pairs(val)["inputs"]),
            "data_paths": {"train": str(train.resolve()), "val": str(val.resolve())},
            "settings": {"space": "hilbert2d", "iterations": 2, "children": 3,
                         "train_data": fingerprint(load_pairs(train)), "val_data": fingerprint(load_pairs(val))}}


def make_pairs(path: Path, n: int = 24, seed: int = 0) -> Path:
    """Held-out windows in the 'atacdenoise prepare' format (synthetic coverage; test fixture)."""
    from atacdenoise.search.data import PAIRS_FORMAT, save_pairs

    rng = np.random.default_rng(seed)
    clean = rng.gamma(0.5, 2.0, (n, WINDOW)).astype(np.float32)
    inputs = (clean * (rng.random((n, WINDOW)) < 0.3)).astype(np.float32)
    flank = (WINDOW - TARGET) // 2
    targets = clean[:, flank:flank + TARGET]
    save_pairs(path, {"inputs": inputs, "targets": targets, "peaks": (targets > 2).astype(np.uint8),
                      "depth": np.full(n, 0.1, np.float32), "chrom": np.full(n, "chr2"),
                      "start": np.arange(n) * TARGET - flank,
                      "meta": {"format": PAIRS_FORMAT, "bin_size": 25, "window_bins": WINDOW, "target_bins": TARGET,
                               "representation": "coverage", "extend": 100, "chroms": ["chr2"],
                               "depths": [0.1, 1.0], "normalisation": "density", "note": "test fixture"}})
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("work")
    train, pairs = make_pairs(root / "train.npz", n=40, seed=1), make_pairs(root / "val.npz")
    return {"root": root, "search": make_search_dir(root / "search", train=train, val=pairs), "pairs": pairs,
            "train": train}


# ---------------------------------------------------------------- the whole round trip

def test_register_promote_load_denoise_compare(server, s3, work):
    root = work["root"]
    first = register_search(work["search"], server, name=NAME, data=work["pairs"], genome="hg19")
    assert first["version"] == "1" and first["parity_max_abs_diff"] < 1e-4

    client = mlflow.tracking.MlflowClient(server)
    run = client.get_run(first["run_id"])
    assert run.data.params["contract.atacdenoise.bin_size"] == "25"
    assert run.data.params["search.iterations"] == "2"
    assert [m.step for m in client.get_metric_history(first["run_id"], "best_val_loss")] == [0, 1, 2]
    children = client.search_runs([run.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{first['run_id']}'")
    assert len(children) == 7  # 9 rows minus 2 parent re-evaluations
    artifacts = {a.path for a in client.list_artifacts(first["run_id"])}
    assert {"search", "model_card.md"} <= artifacts  # the model itself is a LoggedModel (checked in S3 below)
    version = client.get_model_version(NAME, "1")
    assert version.tags["genome"] == "hg19" and version.tags["bin_size"] == "25"
    assert version.tags["input_depth_range"].startswith("0.1-1.0")
    assert "model card" in version.description
    assert_records_tell_the_truth(client, run, version, work)
    stored = s3["client"].list_objects_v2(Bucket=BUCKET, Prefix="artifacts/")
    assert any(o["Key"].endswith(".onnx") for o in stored.get("Contents", [])), "model must live in S3"

    promote(server, NAME, "1", "champion")
    denoiser = load_denoiser(f"models:/{NAME}@champion", server)
    assert denoiser.contract.genome == "hg19" and denoiser.contract.window_bins == WINDOW

    # End to end: a synthetic insertions file denoised with the champion from the registry.
    sizes = {"chr1": 60_000, "chr2": 40_000}
    rng = np.random.default_rng(3)
    with gzip.open(root / "ins.bed.gz", "wt") as out:
        for chrom, length in sizes.items():
            out.write("".join(f"{chrom}\t{p}\t{p + 1}\t.\t0\t+\n" for p in np.sort(rng.integers(0, length, 800))))
    outputs = denoise(root / "ins.bed.gz", f"models:/{NAME}@champion", sizes, root / "den" / "s", genome="hg19",
                      tracking_uri=server, progress=False)
    import pyBigWig

    with pyBigWig.open(outputs["denoised"]) as bw:
        assert bw.chroms() == sizes
        expected = denoiser.predict(np.zeros((1, WINDOW), np.float32))  # model runs: values are finite
        assert np.isfinite(bw.stats("chr1")[0]) and expected[0].shape == (1, TARGET)

    # The challenger: another model registered directly (no search folder to log this time).
    second = register_model(tiny_model(seed=1), server, name=NAME, data=work["pairs"], genome="hg19")
    assert second["version"] == "2"
    results = compare(server, NAME, "2", work["pairs"])
    assert len(results) == 2 and all(r["mse"] >= 0 for r in results.values())
    table = format_comparison(results)
    assert "champion (@champion, v1)" in table and "challenger (v2)" in table and "Pearson" in table
    assert list(results.values())[0] != list(results.values())[1]  # different weights, different scores
    unsearched = client.get_run(second["run_id"])  # no search folder: the pairs are its only data, and say so
    assert [tag.value for i in unsearched.inputs.dataset_inputs for tag in i.tags] == ["validation"]
    assert client.get_model_version(NAME, "2").tags["training_data"].startswith("unknown")
    assert "Written when version 2 was registered" in client.get_registered_model(NAME).description


def assert_records_tell_the_truth(client, run, version, work) -> None:
    """Datasets with digests and paths, the final model's metrics on the logged model, descriptions."""
    from atacdenoise.search.data import load_pairs
    from atacdenoise.search.nash import fingerprint

    inputs = {tag.value: i.dataset for i in run.inputs.dataset_inputs for tag in i.tags
              if tag.key == "mlflow.data.context"}
    assert set(inputs) == {"training", "validation"}
    for context, path in (("training", work["train"]), ("validation", work["pairs"])):
        assert inputs[context].digest == fingerprint(load_pairs(path))
        assert json.loads(inputs[context].source)["uri"] == str(path.resolve())
        profile = json.loads(inputs[context].profile)
        assert profile["sha256_at_registration"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads(inputs["training"].profile)["search_windows"] == 40  # windows the search drew on
    assert version.tags["training_data"] == str(work["train"].resolve())

    [output] = run.outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    metrics = {m.key: m for m in logged.metrics}
    assert metrics["best_val_loss"].value == pytest.approx(1 / 3)  # iteration 2's choice, not iteration 0's 1.0
    assert metrics["best_val_pearson"].value == pytest.approx(0.7)
    assert metrics["parameters"].value == sum(p.numel() for p in tiny_model().parameters())
    assert {m.step for m in logged.metrics} == {2}

    description = client.get_registered_model(NAME).description
    for words in ("Denoises shallow ATAC-seq coverage", "genome hg19", "256 bins of 25 bp", "central 64 bins",
                  "input normalisation density"):
        assert words in description and words in version.description, words


def test_missing_alias_is_one_clear_error(server, work):
    with pytest.raises(InputError, match="has no alias 'nope'"):
        load_denoiser(f"models:/{NAME}@nope", server)
    with pytest.raises(InputError, match="cannot promote"):
        promote(server, NAME, "99", "champion")


# ---------------------------------------------------------------- parity

class _WrongExport(torch.autograd.Function):
    """A custom op whose ONNX symbolic is wrong on purpose: softplus in PyTorch, Relu in the graph."""

    @staticmethod
    def forward(ctx, x):
        return torch.nn.functional.softplus(x)

    @staticmethod
    def symbolic(g, x):
        return g.op("Relu", x)


class _CustomOpModel(torch.nn.Module):
    """Honours the model contract: (N, window) -> (signal, peak_logits), each (N, target)."""

    window_bins, target_bins = WINDOW, TARGET

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(WINDOW, TARGET)

    def to_config(self):
        return {"space": "test-custom-op", "window_bins": WINDOW, "target_bins": TARGET}

    def forward(self, x):
        h = _WrongExport.apply(self.linear(x))
        return h, h - 1


def test_incorrect_custom_op_export_is_refused(server, work):
    client = mlflow.tracking.MlflowClient(server)
    before = len(client.search_model_versions(f"name='{NAME}-custom'"))
    with pytest.raises(ParityError, match="refusing to register"):
        register_model(_CustomOpModel(), server, name=f"{NAME}-custom", data=work["pairs"])
    assert len(client.search_model_versions(f"name='{NAME}-custom'")) == before == 0


def test_tampered_onnx_weights_fail_parity(tmp_path, work):
    import onnx
    from onnx import numpy_helper

    model = tiny_model()
    report = export_onnx(model, tmp_path / "ok.onnx")
    assert report.passed
    proto = onnx.load(str(tmp_path / "ok.onnx"))
    biggest = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))
    weights = numpy_helper.to_array(biggest).copy()
    weights.flat[::7] += 0.5
    biggest.CopyFrom(numpy_helper.from_array(weights, biggest.name))
    onnx.save(proto, str(tmp_path / "tampered.onnx"))
    with pytest.raises(ParityError, match="differs from PyTorch"):
        check_parity(tmp_path / "tampered.onnx", model, np.load(work["pairs"])["inputs"])


# ---------------------------------------------------------------- failures of the services

def test_unreachable_server_retries_then_one_error(work):
    closed = f"http://127.0.0.1:{free_port()}"
    before = sorted(p.name for p in work["search"].iterdir())
    started = time.monotonic()
    with pytest.raises(InputError, match="unreachable after 3 attempts") as err:
        log_search(work["search"], closed, params={}, attempts=3, backoff=0.05)
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 10  # it waited 0.05 + 0.1 s between tries, and no more than a few seconds
    assert "registry register" in str(err.value)
    assert sorted(p.name for p in work["search"].iterdir()) == before  # results untouched


def test_wrong_s3_credentials_stop_the_server_start(s3, tmp_path):
    env = {**s3["env"], "AWS_SECRET_ACCESS_KEY": "wrong-secret"}
    with pytest.raises(InputError, match="S3 refused access.*AWS_SECRET_ACCESS_KEY"):
        start_server(tmp_path / "mlflow", artifacts=f"s3://{BUCKET}/artifacts", env=env, timeout=10)
    assert not (tmp_path / "mlflow" / "mlflow-server.log").exists()  # no server was launched
