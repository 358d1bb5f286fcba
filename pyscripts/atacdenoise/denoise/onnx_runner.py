"""Run an exported denoiser with onnxruntime: from a .onnx path or ``models:/NAME@ALIAS``.

No torch here (the inference container has none): the model's contract comes
from the ONNX file's metadata, the registry download from mlflow's artifact API.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from atacdenoise.denoise.contract import ModelContract
from atacdenoise.errors import InputError

log = logging.getLogger(__name__)

INPUT_NAME = "x"
OUTPUT_NAMES = ("signal", "peak_logits")
DOWNLOAD_TIMEOUT = 300.0  # seconds for a registered model's download before giving up
CONSTANT_CACHE = 8  # outputs for constant inputs kept per session


class OnnxDenoiser:
    """An onnxruntime session plus the model's contract."""

    skip_constant = True  # see predict

    def __init__(self, path: str | os.PathLike, threads: int | None = None, source: str | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        self.source = source or str(path)
        if not self.path.is_file():
            raise InputError(self.source, "ONNX model file does not exist")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep instead of spinning: on a shared 2-core machine 8-16 % less wall time (medians) and
        # 5-11 % less CPU, the fastest runs equal, same outputs (benchmarks/RESULTS.md, Genome scale); a batch
        # runs ~0.1 s, so waking the threads costs next to nothing.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.inter_op_num_threads = 1  # one chain of operators: a second pool only adds threads
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own (unexported) classes for bad files
            raise InputError(self.source, f"not a valid ONNX model ({type(err).__name__}: "
                                          f"{str(err).splitlines()[0][:200]})") from None
        self.contract = ModelContract.from_metadata(self.session.get_modelmeta().custom_metadata_map, self.source)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()  # provenance: which weights made a track
        self._check_graph()
        self._options = options
        self.graph = self.path.read_bytes()  # the ONNX model the session runs (optimise rewrites it)
        self.target_bins = self.contract.target_bins  # bins predicted per window (more after optimise)
        self.rewrites: list[str] = []
        self.precision = {"mode": "float32"}  # see quantize
        self.windows_run = self.windows_skipped = 0
        self._constant: dict[tuple[int, bytes], tuple[np.ndarray, np.ndarray]] = {}

    def _check_graph(self) -> None:
        """The graph must take and give what its metadata promises: names, float32, window and target widths."""
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or list(OUTPUT_NAMES) != outputs:
            raise InputError(self.source, f"graph has inputs {inputs} and outputs {outputs}; expected "
                                          f"[{INPUT_NAME!r}] -> {list(OUTPUT_NAMES)}")
        c = self.contract
        channels = [] if c.input_channels == 1 else [c.input_channels]
        expected = {INPUT_NAME: ([*channels, c.window_bins], f"window_bins {c.window_bins}"
                                 + (f" and {c.input_channels} input channels" if channels else "")),
                    **{name: ([c.target_bins], f"target_bins {c.target_bins}") for name in OUTPUT_NAMES}}
        for node in (*self.session.get_inputs(), *self.session.get_outputs()):
            if node.type != "tensor(float)":
                raise InputError(self.source, f"graph {node.name!r} is {node.type}, but a denoiser takes and "
                                              f"gives float32 (tensor(float))")
            dims, promise = expected[node.name]
            shape = list(node.shape)[1:]  # the batch axis aside
            if len(shape) != len(dims) or any(isinstance(d, int) and d != e for d, e in zip(shape, dims)):
                raise InputError(self.source, f"graph {node.name!r} has shape {list(node.shape)} but its "
                                              f"metadata says {promise}")

    def optimise(self) -> list[str]:
        """Apply the rewrites of :mod:`.fast_graph` that pass their checks (same values, less work); return
        what was applied (also :attr:`rewrites`). A rewrite that fails its check is skipped with a note."""
        from atacdenoise.denoise.fast_graph import (
            check_same_outputs, check_widened, conv1d_as_conv2d, widen_graph,
        )

        c = self.contract
        widened = widen_graph(self.graph, c.window_bins, c.target_bins)
        if widened is not None and self._try(widened.graph, "widening", lambda old, new: check_widened(
                old, new, c.window_bins, c.target_bins, widened.target_bins, c.input_channels)):
            self.target_bins = widened.target_bins
            self.rewrites.append(f"widened: {self.target_bins} of {c.window_bins} bins predicted per window")
        conv2d = conv1d_as_conv2d(self.graph)
        if conv2d is not None and self._try(conv2d, "Conv1d as Conv2d", lambda old, new: check_same_outputs(
                old, new, c.window_bins, c.input_channels)):
            self.rewrites.append("Conv1d as Conv2d")
        return self.rewrites

    def quantize(self, calibration: np.ndarray, check: np.ndarray) -> bool:
        """Run the int8 trunk calibrated on ``calibration`` windows of this input (:mod:`.quantize`) when it
        agrees with float32 on its ``check`` windows; True when it does (:attr:`precision` says how well), else
        float32 stays, with a note. Before :meth:`optimise` (calibration runs on the contract's windows)."""
        from atacdenoise.denoise import quantize as int8

        graph, self.precision = int8.quantize_graph(self.graph, calibration, check, self._predictor,
                                                    int8.MIN_AGREEMENT)
        if graph is None:
            log.warning("note: the int8 model of %s agrees with float32 at Pearson %.5f < %s on %d windows of "
                        "this input: float32 is used", self.source, self.precision["agreement_pearson"],
                        self.precision["min_agreement"], self.precision["check_windows"])
            return False
        self._use(graph, self._session(graph))
        return True

    def _try(self, graph: bytes, what: str, check) -> bool:
        """Run ``graph`` from now on when ``check(old, new)`` (callables of a window batch) passes."""
        session = self._session(graph)
        run = lambda s: lambda batch: s.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(batch)})  # noqa: E731
        if not check(run(self.session), run(session)):
            log.warning("note: model %s failed the %s check; that rewrite is skipped", self.source, what)
            return False
        self._use(graph, session)
        return True

    def _use(self, graph: bytes, session) -> None:
        self.graph, self.session = graph, session
        self._constant.clear()  # outputs of the previous graph

    def _predictor(self, graph: bytes):
        """windows -> ``(signal, peak probability)`` of ``graph``, as :meth:`run` gives them, 64 at a time."""
        session = self._session(graph)

        def predict(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            outputs = [self.run(windows[i:i + 64], session) for i in range(0, len(windows), 64)]
            return tuple(np.concatenate(parts) for parts in zip(*outputs))
        return predict

    def _session(self, graph: bytes):
        import onnxruntime as ort

        return ort.InferenceSession(graph, self._options, providers=["CPUExecutionProvider"])

    def predict(self, windows: np.ndarray, batch_size: int = 64,
                skip_constant: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(n, window_bins)`` (or ``(n, channels, window_bins)``) -> ``(signal, peak probability)``,
        each ``(n, target_bins)`` float32 (:attr:`target_bins`: the contract's, or more after :meth:`optimise`).

        ``skip_constant`` (default: :attr:`skip_constant`): a batch whose
        windows are all the same constant input (per channel: no insertion
        anywhere in it and genome channels flat, as in a centromere, an
        unassembled arm, a run of N) is not run; it gets the model's output
        for that input, computed once per session and batch size. Exact by
        construction: the same input tensor gives ONNX Runtime the same output.
        Only whole batches are skipped: dropping single empty windows and
        packing the others into new batches is not exact with more than one
        thread (ONNX Runtime's result for a window moves by ~1 ulp with its
        batch mates). :attr:`windows_run` and :attr:`windows_skipped` count.
        """
        windows = np.asarray(windows, dtype=np.float32)
        c = self.contract
        expected = (c.window_bins,) if c.input_channels == 1 else (c.input_channels, c.window_bins)
        if windows.shape[1:] != expected:
            channels = "" if c.input_channels == 1 else f"{c.input_channels} channels x "
            raise InputError(self.source, f"model expects windows of {channels}{c.window_bins} bins, "
                                          f"got shape {windows.shape}")
        skip = self.skip_constant if skip_constant is None else skip_constant
        signal = np.empty((len(windows), self.target_bins), np.float32)
        prob = np.empty_like(signal)
        for first in range(0, len(windows), batch_size):
            batch = np.ascontiguousarray(windows[first:first + batch_size])
            key = constant_key(batch) if skip else None
            if key is not None:
                s, p = self.constant_output(batch, key)
                self.windows_skipped += len(batch)
            else:
                s, p = self.run(batch)
                self.windows_run += len(batch)
            signal[first:first + len(batch)], prob[first:first + len(batch)] = s, p
        return signal, prob

    def run(self, batch: np.ndarray, session=None) -> tuple[np.ndarray, np.ndarray]:
        """``(signal, peak probability)`` of one batch, straight from ONNX Runtime (this session, or ``session``)."""
        s, logits = (session or self.session).run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        return np.maximum(s, 0.0), sigmoid(logits)  # a linear-output model may dip below 0

    def constant_output(self, batch: np.ndarray, key: bytes) -> tuple[np.ndarray, np.ndarray]:
        """The model's output for ``batch`` (all windows the constant input ``key``), run once per size and key."""
        if (len(batch), key) not in self._constant:
            if len(self._constant) >= CONSTANT_CACHE:  # a few inputs recur (zero, all-N); others are rare
                self._constant.clear()
            self._constant[len(batch), key] = self.run(batch)
        return self._constant[len(batch), key]


def constant_key(batch: np.ndarray) -> bytes | None:
    """The bit pattern of the per-channel value when every window of ``batch`` is that same constant, else None.

    Bits, not values: +0.0 and -0.0 (or two NaNs) are different inputs to the model.
    """
    bits = batch.view(np.uint32)
    first = bits[:1, ..., :1]
    if not (bits[0] == first[0]).all() or not (bits == first).all():  # one window first: the usual no is cheap
        return None
    return first.tobytes()


def sigmoid(logits: np.ndarray) -> np.ndarray:
    # Written with exp of a non-positive number only, so large logits never overflow.
    e = np.exp(-np.abs(logits))
    return np.where(logits >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)


def load_denoiser(model: str | os.PathLike, tracking_uri: str | None = None, threads: int | None = None) -> OnnxDenoiser:
    """A ``.onnx`` path, a bundled model's name (:func:`bundled_by_name`), or ``models:/NAME@ALIAS`` /
    ``models:/NAME/VERSION`` from the MLflow registry."""
    model = os.fspath(model)
    if not model.startswith("models:/"):
        return OnnxDenoiser(bundled_by_name(model), threads)
    with tempfile.TemporaryDirectory(prefix="atacdenoise-model-") as tmp:
        onnx_path = download_registered_onnx(model, tmp, tracking_uri)
        return OnnxDenoiser(onnx_path, threads, source=model)  # the session holds the weights: tmp may go


def bundled_by_name(model: str) -> str:
    """``model`` itself when it looks like a file, else the bundled model of that name (the ``.onnx`` file's stem in
    ``registry/models/``, e.g. ``atac-denoiser-counts-small``: the bundled models wherever the package is installed)."""
    from atacdenoise.bundled import bundled_models_dir

    if Path(model).exists() or model.endswith(".onnx") or os.sep in model:
        return model
    bundled = {path.stem: path for path in sorted(bundled_models_dir().glob("*.onnx"))}
    if model not in bundled:
        raise InputError(model, f"no such file, and no bundled model of that name (bundled: {', '.join(bundled)})")
    return str(bundled[model])


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
