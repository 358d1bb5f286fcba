"""Talking to an MLflow tracking server: is it up, retries with backoff, and deadlines on MLflow calls.

Below both ``registry/`` (logging, registering) and ``denoise/`` (downloading a
registered model), which share these helpers without either reaching into the other.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from typing import Iterator

from atacdenoise.errors import InputError

REGISTER_HINT = ("the search folder is untouched, register it later with 'atacdenoise registry register DIR'")
SERVE_HINT = ("is the server running? start one with 'atacdenoise registry serve' and point at it with "
              "--tracking-uri or MLFLOW_TRACKING_URI")


def is_healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for_tracking(tracking_uri: str, attempts: int = 5, backoff: float = 1.0, hint: str = REGISTER_HINT,
                      deadline: "Deadline | None" = None) -> None:
    """Retry ``GET /health`` with exponential backoff; one clear InputError when it never answers.

    Only http(s) URIs are probed; a local ``sqlite:``/``file:`` store needs no server.
    With a ``deadline`` the waits stop when it has passed, whatever ``attempts`` says.
    """
    if urllib.parse.urlparse(tracking_uri).scheme not in ("http", "https"):
        return
    waited = 0.0
    tries = 0
    for attempt in range(attempts):
        tries += 1
        if is_healthy(tracking_uri):
            return
        if attempt < attempts - 1:
            delay = backoff * 2**attempt
            if deadline is not None:
                delay = min(delay, max(deadline.remaining() - 1.0, 0.0))
                if delay <= 0:
                    break
            time.sleep(delay)
            waited += delay
    raise InputError(tracking_uri, f"MLflow tracking server unreachable after {tries} attempts over "
                                   f"{waited:.1f} s; {hint}")


class DeadlinePassed(BaseException):
    """Raised by the alarm of :func:`registry_deadline`; a BaseException so MLflow's ``except Exception`` lets it by."""


class Deadline:
    """A watchdog: the operation gives up when it makes no progress for ``seconds``; ``stage`` says where it is.

    Setting ``stage`` (or calling :meth:`progress`) counts as progress and
    re-arms the alarm of :func:`registry_deadline`.
    """

    def __init__(self, seconds: float, rearm=None):
        self.seconds = float(seconds)
        self._rearm = rearm
        self.end = time.monotonic() + self.seconds
        self._stage = "starting"

    @property
    def stage(self) -> str:
        return self._stage

    @stage.setter
    def stage(self, value: str) -> None:
        self._stage = value
        self.progress()

    def progress(self) -> None:
        self.end = time.monotonic() + self.seconds
        if self._rearm is not None:
            self._rearm(self.seconds)

    def remaining(self) -> float:
        return self.end - time.monotonic()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (MLflow reads its HTTP and progress settings there) inside the block only."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def registry_deadline(seconds: float) -> Iterator[Deadline]:
    """Give up when MLflow calls inside the block make no progress for ``seconds``.

    MLflow's own retries (default: 7 retries with backoff factor 2 and 120 s
    per request, i.e. minutes against a dead server) are cut to 2 quick
    retries within a third of ``seconds`` each, so a dead server is noticed in
    seconds; in the main thread an alarm, re-armed at every step of progress
    (:class:`Deadline`), raises :class:`DeadlinePassed` when a step hangs.
    """
    if seconds <= 0:
        raise InputError(None, f"--timeout must be positive, got {seconds:g}")
    per_request = max(1, int(seconds / 3))
    quick_retries = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(per_request),
                     "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2",
                     "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": str(per_request)}
    use_alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    previous = None
    if use_alarm:
        def on_alarm(signum, frame):
            raise DeadlinePassed()

        previous = signal.signal(signal.SIGALRM, on_alarm)
    deadline = Deadline(seconds, (lambda s: signal.setitimer(signal.ITIMER_REAL, s)) if use_alarm else None)
    deadline.progress()
    try:
        with environment(quick_retries):
            yield deadline
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


@contextmanager
def quick_requests(seconds: int = 3) -> Iterator[None]:
    """No retries and a short timeout: for best-effort cleanup after giving up."""
    with environment({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(seconds)}):
        yield
