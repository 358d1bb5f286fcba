"""Track writers run on a background thread while the model computes the next chunk.

ONNX Runtime lets the GIL go while it runs a batch, and so does zlib while it
compresses a bigWig block: the writers' ``add`` calls for one chunk run on this
thread while the main thread waits for the next chunk's model output.
"""

from __future__ import annotations

import queue
import threading


class WriterThread:
    """Run ``submit(fn, *args)`` calls in order on one background thread, at most ``pending`` of them waiting.

    The queue bounds memory to ``pending`` calls' arguments (``submit`` blocks while it is full; denoise's
    default of 2 is one chunk's two tracks behind the one being written). An exception raised
    by a call is raised again, the same object, in the submitting thread: by the next ``submit`` or on
    leaving the ``with`` block; the calls queued after it are dropped. Leaving the block waits for the queued
    calls (leaving on an exception drops them instead), so the writers can be closed after it: enter it on an
    ExitStack after the writers, which then close after it, as they would without the thread (their atomic
    outputs are complete, or removed on an exception, as before).
    """

    def __init__(self, pending: int = 2):
        self._queue: queue.Queue = queue.Queue(pending)
        self._error: BaseException | None = None
        self._dropping = False
        self._thread = threading.Thread(target=self._work, name="track-writer", daemon=True)

    def __enter__(self) -> "WriterThread":
        self._thread.start()
        return self

    def __exit__(self, exc_type, *_) -> None:
        self._dropping = exc_type is not None  # the block failed: its outputs are removed, no need to write them
        self._queue.put(None)
        self._thread.join()
        if exc_type is None:
            self._raise_error()

    def submit(self, fn, *args) -> None:
        self._raise_error()
        self._queue.put((fn, args))

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None  # raised once, on this thread
            raise error

    def _work(self) -> None:
        failed = False
        while (call := self._queue.get()) is not None:
            if failed or self._dropping:
                continue  # keep taking calls so that a blocked submit returns and raises the error
            fn, args = call
            try:
                fn(*args)
            except BaseException as err:  # handed to the submitting thread
                self._error, failed = err, True
