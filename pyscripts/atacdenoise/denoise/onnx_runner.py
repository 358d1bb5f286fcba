"""Run an exported denoiser with onnxruntime: from a .onnx path or ``models:/NAME@ALIAS``.

No torch here (the inference container has none): the model's contract comes
from the ONNX file's metadata, the registry download from mlflow's artifact API.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from atacdenoise.denoise.contract import ModelContract
from atacdenoise.errors import InputError

INPUT_NAME = "x"
OUTPUT_NAMES = ("signal", "peak_logits")
DOWNLOAD_TIMEOUT = 300.0  # seconds for a registered model's download before giving up


class OnnxDenoiser:
    """An onnxruntime session plus the model's contract."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, source: str | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        self.source = source or str(path)
        if not self.path.is_file():
            raise InputError(self.source, "ONNX model file does not exist")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own (unexported) classes for bad files
            raise InputError(self.source, f"not a valid ONNX model ({type(err).__name__}: "
                                          f"{str(err).splitlines()[0][:200]})") from None
        self.contract = ModelContract.from_metadata(self.session.get_modelmeta().custom_metadata_map, self.source)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()  # provenance: which weights made a track
        self._check_graph()

    def _check_graph(self) -> None:
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or list(OUTPUT_NAMES) != outputs:
            raise InputError(self.source, f"graph has inputs {inputs} and outputs {outputs}; expected "
                                          f"[{INPUT_NAME!r}] -> {list(OUTPUT_NAMES)}")

    def predict(self, windows: np.ndarray, batch_size: int = 64,
                skip_empty: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(n, window_bins)`` (or ``(n, channels, window_bins)``) -> ``(signal, peak probability)``,
        each ``(n, target_bins)`` float32.

        ``skip_empty``: a batch whose every input value is +0.0 (no insertion
        in any of its windows, all genome channels zero: a centromere, an
        unassembled arm) is not run; it gets the model's output for an all-zero
        batch of its size, computed once per session. Exact by construction:
        the same input gives ONNX Runtime the same output. (Skipping single
        empty windows and packing the others into new batches is not exact:
        ONNX Runtime's result for a window moves by ~1 ulp with its batch mates.)
        """
        windows = np.asarray(windows, dtype=np.float32)
        c = self.contract
        expected = (c.window_bins,) if c.input_channels == 1 else (c.input_channels, c.window_bins)
        if windows.shape[1:] != expected:
            channels = "" if c.input_channels == 1 else f"{c.input_channels} channels x "
            raise InputError(self.source, f"model expects windows of {channels}{c.window_bins} bins, "
                                          f"got shape {windows.shape}")
        signal = np.empty((len(windows), self.contract.target_bins), np.float32)
        prob = np.empty_like(signal)
        for first in range(0, len(windows), batch_size):
            batch = windows[first:first + batch_size]
            # Bit patterns, not values: a -0.0 (never produced by binning) does not count as empty.
            if skip_empty and not batch.view(np.uint32).any():
                s, p = self.empty_output(len(batch))
            else:
                s, logits = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(batch)})
                s, p = np.maximum(s, 0.0), sigmoid(logits)  # a linear-output model may dip below 0
            signal[first:first + len(batch)], prob[first:first + len(batch)] = s, p
        return signal, prob

    def empty_output(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(signal, peak probability)`` of a batch of ``n`` all-zero windows, computed once per size."""
        cache = self.__dict__.setdefault("_empty", {})
        if n not in cache:
            c = self.contract
            shape = (n, c.window_bins) if c.input_channels == 1 else (n, c.input_channels, c.window_bins)
            s, logits = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.zeros(shape, np.float32)})
            cache[n] = (np.maximum(s, 0.0), sigmoid(logits))
        return cache[n]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    # Written with exp of a non-positive number only, so large logits never overflow.
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)


def load_denoiser(model: str | os.PathLike, tracking_uri: str | None = None, threads: int | None = None) -> OnnxDenoiser:
    """A ``.onnx`` path, or ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION`` from the MLflow registry."""
    model = os.fspath(model)
    if not model.startswith("models:/"):
        return OnnxDenoiser(model, threads)
    with tempfile.TemporaryDirectory(prefix="atacdenoise-model-") as tmp:
        onnx_path = download_registered_onnx(model, tmp, tracking_uri)
        return OnnxDenoiser(onnx_path, threads, source=model)  # the session holds the weights: tmp may go


def download_registered_onnx(model_uri: str, dest: str | os.PathLike, tracking_uri: str | None = None) -> Path:
    """Download a registered model's files and return its ``.onnx`` path; clear InputErrors for the usual mistakes."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from atacdenoise.io.tracking_server import SERVE_HINT, DeadlinePassed, registry_deadline, wait_for_tracking

    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        raise InputError(model_uri, "set --tracking-uri or MLFLOW_TRACKING_URI to load a registered model")
    wait_for_tracking(tracking_uri, attempts=3, backoff=0.5, hint=f"needed to load {model_uri}: {SERVE_HINT}")
    # models:/ URIs resolve through the registry URI, which does not follow download_artifacts' tracking_uri.
    mlflow.set_registry_uri(tracking_uri)
    try:
        with registry_deadline(DOWNLOAD_TIMEOUT):
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=os.fspath(dest),
                                                             tracking_uri=tracking_uri))
    except MlflowException as err:
        raise InputError(model_uri, _registry_problem(model_uri, err)) from None
    except DeadlinePassed:
        raise InputError(model_uri, f"download from {tracking_uri} did not finish in {DOWNLOAD_TIMEOUT:.0f} s; "
                                    f"is the server still running?") from None
    found = sorted(local.rglob("*.onnx"))
    if not found:
        raise InputError(model_uri, "registered model has no .onnx file (was it logged with the onnx flavor?)")
    return found[0]


def _registry_problem(model_uri: str, err) -> str:
    message = str(err).splitlines()[0][:300]
    name_alias = model_uri.removeprefix("models:/")
    if "@" in name_alias and ("alias" in message.lower() or "not found" in message.lower()
                              or getattr(err, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"):
        name, alias = name_alias.split("@", 1)
        return f"registered model {name!r} has no alias {alias!r} ({message})"
    if "credential" in message.lower() or "access denied" in message.lower() or "signature" in message.lower():
        return f"the artifact store refused the credentials ({message})"
    return f"cannot download from the registry ({message})"
