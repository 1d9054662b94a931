"""Cross-session embedding batching.

Every stream's engine session runs in a worker thread and calls `embed(windows)` synchronously.
Instead of each thread running the ONNX model on its own few windows, the calls are handed to one
batcher thread that waits a couple of milliseconds for other streams' windows and runs the model
once on the concatenation: one larger onnxruntime call costs far less than many small ones.

Requests are grouped by model object (a stream keeps the model it started with across a hot
reload, so its speaker embeddings stay in one space) and by window length.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EmbedFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class _Request:
    model: Any
    windows: np.ndarray
    future: Future[np.ndarray] = field(default_factory=Future)


def group_requests(requests: list[_Request]) -> list[list[_Request]]:
    """Requests that can share one model call: same model object, same window shape."""
    groups: dict[tuple[int, tuple[int, ...]], list[_Request]] = {}
    for req in requests:
        groups.setdefault((id(req.model), req.windows.shape[1:]), []).append(req)
    return list(groups.values())


def run_group(group: list[_Request]) -> int:
    """One model call for the group; results (or the exception) go back to each caller's future."""
    try:
        batch = np.concatenate([r.windows for r in group], axis=0) if len(group) > 1 else group[0].windows
        out = np.asarray(group[0].model.embed(batch))
        start = 0
        for r in group:
            n = r.windows.shape[0]
            r.future.set_result(out[start : start + n])
            start += n
        return int(batch.shape[0])
    except Exception as exc:  # the callers re-raise it in their own threads
        for r in group:
            if not r.future.done():
                r.future.set_exception(exc)
        return 0


class BatchingEmbedder:
    def __init__(
        self,
        max_windows: int = 64,
        wait_seconds: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.max_windows = max_windows
        self.wait_seconds = wait_seconds
        self.on_batch = on_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="embed-batcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def embed_fn(self, model: Any) -> EmbedFn:
        """The `embed` callable handed to one stream's engine session (bound to that stream's model)."""

        def embed(windows: np.ndarray) -> np.ndarray:
            windows = np.ascontiguousarray(windows, dtype=np.float32)
            if windows.ndim != 2 or windows.shape[0] == 0 or self._stopped or self._thread is None:
                return np.asarray(model.embed(windows))
            req = _Request(model, windows)
            self._queue.put(req)
            return req.future.result()

        return embed

    def _collect(self, first: _Request) -> list[_Request]:
        batch = [first]
        count = first.windows.shape[0]
        deadline = time.monotonic() + self.wait_seconds
        while count < self.max_windows:
            timeout = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # keep the stop marker for the outer loop
                break
            batch.append(item)
            count += item.windows.shape[0]
        return batch

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            for group in group_requests(self._collect(first)):
                n = run_group(group)
                if n and self.on_batch is not None:
                    self.on_batch(n)
        # Anything still queued at stop is answered directly so no caller hangs.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                run_group([item])
