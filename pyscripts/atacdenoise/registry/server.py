"""Start a real ``mlflow server`` and wait until it answers ``GET /health``.

Backend: SQLite in a local folder by default, or any SQLAlchemy URI (PostgreSQL).
Artifacts: a local folder by default, or ``s3://bucket[/prefix]``; the server
proxies artifacts (``--artifacts-destination``), so only the server needs the
S3 credentials (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` and, for
S3-compatible stores such as SeaweedFS or MinIO, ``MLFLOW_S3_ENDPOINT_URL``).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from atacdenoise.errors import InputError
from atacdenoise.io.tracking_server import is_healthy

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(host: str, port: int) -> None:
    """One clear InputError when something already listens on ``host:port`` (say, an earlier server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no obstacle
        try:
            sock.bind((host, port))
        except OSError as err:
            url = f"http://{host}:{port}"
            answer = "an MLflow server answers there" if is_healthy(url) else err.strerror or "in use"
            raise InputError(url, f"port {port} is already in use ({answer}); stop that server or choose "
                                  f"another --port") from None


@dataclass
class MlflowServer:
    """A running server; ``stop()`` (or leaving a ``with`` block) ends it."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def stop(self, grace: float = 10.0) -> None:
        stop_process(self.process, grace)

    def __enter__(self) -> "MlflowServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_process(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group (the server forks workers), then SIGKILL after ``grace`` s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    except ProcessLookupError:
        pass


def backend_uri(workdir: Path, backend: str | None) -> str:
    if backend:
        return backend
    return f"sqlite:///{(workdir / 'mlflow.db').resolve()}"


def artifacts_destination(workdir: Path, artifacts: str | None) -> str:
    if artifacts:
        return artifacts
    return (workdir / "artifacts").resolve().as_uri()


def check_s3_access(artifacts: str, env: dict[str, str] | None = None) -> None:
    """Fail fast with one clear line when the bucket is unreachable or the credentials are wrong.

    Without this the server starts happily and every upload later fails with an HTTP 500.
    ``env`` holds the server's environment (credentials, endpoint); default: this process's.
    """
    import boto3
    import botocore.exceptions

    env = os.environ if env is None else env
    bucket, _, prefix = artifacts.removeprefix("s3://").partition("/")
    endpoint = env.get("MLFLOW_S3_ENDPOINT_URL")
    # A fresh session with explicit keys: boto3's default session caches credentials process-wide.
    session = boto3.session.Session(aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
                                    aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
                                    aws_session_token=env.get("AWS_SESSION_TOKEN"),
                                    region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"))
    client = session.client("s3", endpoint_url=endpoint)
    where = f"{artifacts}" + (f" at {endpoint}" if endpoint else "")
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except botocore.exceptions.NoCredentialsError:
        raise InputError(artifacts, "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
    except botocore.exceptions.ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            raise InputError(artifacts, f"S3 bucket {bucket!r} does not exist{' at ' + endpoint if endpoint else ''}") from None
        raise InputError(artifacts, f"S3 refused access to {where} ({code}): check AWS_ACCESS_KEY_ID and "
                                    f"AWS_SECRET_ACCESS_KEY") from None
    except botocore.exceptions.EndpointConnectionError:
        raise InputError(artifacts, f"cannot reach the S3 endpoint {endpoint or '(AWS default)'}") from None


def mlflow_command(backend: str, artifacts: str, host: str, port: int, workers: int = 1) -> list[str]:
    mlflow = shutil.which("mlflow")
    launcher = [mlflow] if mlflow else [sys.executable, "-m", "mlflow"]
    return [*launcher, "server", "--backend-store-uri", backend, "--artifacts-destination", artifacts,
            "--host", host, "--port", str(port), "--workers", str(workers)]


def start_server(
    workdir: str | os.PathLike,
    backend: str | None = None,
    artifacts: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> MlflowServer:
    """Start ``mlflow server`` in the background and return once ``/health`` answers.

    ``env`` adds variables for the server only (e.g. S3 credentials). The log
    goes to ``workdir/mlflow-server.log``. Raises InputError when the server
    exits early or is not healthy within ``timeout`` seconds (and stops it).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    server_env = {**os.environ, **(env or {})}
    artifacts = artifacts_destination(workdir, artifacts)
    if artifacts.startswith("s3://"):
        check_s3_access(artifacts, server_env)
    if port:
        check_port_free(host, port)
    port = port or free_port(host)
    url = f"http://{host}:{port}"
    log_path = workdir / "mlflow-server.log"
    with open(log_path, "ab") as server_output:
        process = subprocess.Popen(mlflow_command(backend_uri(workdir, backend), artifacts, host, port),
                                   stdout=server_output, stderr=subprocess.STDOUT, env=server_env, start_new_session=True)
    server = MlflowServer(process, url, log_path)
    try:
        wait_until_healthy(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def wait_until_healthy(server: MlflowServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
            raise InputError(server.log_path, f"mlflow server exited with status {server.process.returncode}: {tail[0]}")
        if is_healthy(server.url):
            return
        time.sleep(0.5)
    raise InputError(server.log_path, f"mlflow server at {server.url} not healthy after {timeout:.0f} s")


def serve(workdir, backend=None, artifacts=None, host="127.0.0.1", port=None) -> None:
    """``atacdenoise registry serve``: start the server, print its URL, run until Ctrl-C or SIGTERM.

    Either signal stops the server's whole process group (it runs in its own
    session, so a signal to this process alone would otherwise orphan it).
    """
    def on_signal(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        server = start_server(workdir, backend, artifacts, host, port)  # stops its server itself if interrupted
        print(f"MLflow tracking server at {server.url} (log: {server.log_path}); Ctrl-C stops it", flush=True)
        print(f"export MLFLOW_TRACKING_URI={server.url}", flush=True)
        try:
            server.process.wait()
            if server.process.returncode:
                raise InputError(server.log_path, f"mlflow server exited with status {server.process.returncode}")
        except KeyboardInterrupt:
            log.info("stopping the MLflow server")
        finally:
            server.stop()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
