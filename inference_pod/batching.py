"""Cross-session batching of model calls (embeddings, segmentation chunks).

Every stream's engine session runs in a worker thread and calls its models synchronously:
`embed(windows)` and, with the segmentation pipeline, `segment(chunks)`. Instead of each thread
running an ONNX model on its own few rows, the calls are handed to a batcher thread that takes
whatever other streams queued meanwhile and runs the model once on the concatenation: one larger
onnxruntime call costs far less than many small ones.

A request carries the function to call on the concatenated batch. Requests are grouped by that
function's owner (the model object: a stream keeps the model it started with across a hot reload,
so its speaker embeddings stay in one space), the function's name, and the input's shape past the
batch axis. Inputs of different shapes are never padded into one batch: the segmentation network
normalises each chunk, so a stream's first, shorter chunks only ever share a call with chunks of
exactly their length, and every caller gets exactly the rows it would get from a call of its own.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

log = logging.getLogger(__name__)

# inputs [B, ...] -> outputs [B, ...]: row i of the output belongs to row i of the input.
BatchFn = Callable[[np.ndarray], np.ndarray]
EmbedFn = BatchFn  # windows [B, T] -> embeddings [B, D]
SegmentFn = BatchFn  # chunks [B, T] -> hard local-speaker activity [B, T // frame, S]
In = TypeVar("In")
Out = TypeVar("Out")


_attributed = threading.local()


def attributed_cpu() -> float:
    """CPU seconds this thread has spent in calls a batcher ran on it directly (and counted under
    the batcher's stage) so far: what the thread's own stage must leave out."""
    return float(getattr(_attributed, "seconds", 0.0))


class Embedder(Protocol):
    """What `embed_fn` batches (voiceflow.embedding.EmbeddingModel)."""

    @property
    def rows_independent(self) -> bool: ...

    def embed(self, windows: np.ndarray, /) -> np.ndarray: ...


class Activity(Protocol):
    @property
    def hard(self) -> np.ndarray: ...


class Segmenter(Protocol):
    """What `segment_fn` batches (voiceflow.segmentation.model.SegmentationModel)."""

    def activity(self, chunks: np.ndarray, /) -> Activity: ...


@dataclass(eq=False)  # identity: a request is one caller's
class _Request:
    owner: Any  # the model object the call belongs to (kept alive while queued: its id is the key)
    name: str  # which of the owner's calls ("embed", "segment")
    call: BatchFn  # run once on the concatenation of the group's inputs
    inputs: np.ndarray
    future: Future[np.ndarray] = field(default_factory=Future)

    @property
    def key(self) -> tuple[int, str, tuple[int, ...]]:
        return (id(self.owner), self.name, tuple(self.inputs.shape[1:]))

    @property
    def rows(self) -> int:
        return int(self.inputs.shape[0])


# A call that takes every caller's input as it is and answers one output per caller, in order:
# for work that cannot be one concatenation, such as a recurrent model run over several streams'
# frame sequences, each with its own state (voiceflow.vad.VADModel.run).
JointFn = Callable[[list[Any]], list[Any]]


@dataclass(eq=False)
class _JointRequest:
    owner: Any
    name: str
    call: JointFn
    inputs: Any
    future: Future[Any] = field(default_factory=Future)

    @property
    def key(self) -> tuple[int, str, tuple[int, ...]]:
        return (id(self.owner), self.name, ())

    @property
    def rows(self) -> int:
        return 1  # one caller: the batch bound counts callers


def group_requests(requests: list[Any]) -> list[list[Any]]:
    """Requests that can share one model call: same owner, same call, same input shape past the
    batch axis (never padded), in arrival order."""
    groups: dict[tuple[int, str, tuple[int, ...]], list[Any]] = {}
    for req in requests:
        groups.setdefault(req.key, []).append(req)
    return list(groups.values())


def run_joint(group: list[_JointRequest]) -> int:
    """One joint call for the group; each caller's output (or the exception) to its future."""
    try:
        outs = group[0].call([r.inputs for r in group])
        if len(outs) != len(group):
            raise ValueError(f"{group[0].name} returned {len(outs)} results for {len(group)} callers")
        for r, out in zip(group, outs, strict=True):
            r.future.set_result(out)
        return len(group)
    except Exception as exc:  # the callers re-raise it in their own threads
        for r in group:
            if not r.future.done():
                r.future.set_exception(exc)
        return 0


def run_group(group: list[Any]) -> int:
    """One model call for the group; results (or the exception) go back to each caller's future."""
    if isinstance(group[0], _JointRequest):
        return run_joint(group)
    try:
        batch = np.concatenate([r.inputs for r in group], axis=0) if len(group) > 1 else group[0].inputs
        out = np.asarray(group[0].call(batch))
        if out.shape[0] != batch.shape[0]:
            raise ValueError(f"{group[0].name} returned {out.shape[0]} rows for {batch.shape[0]} inputs")
        start = 0
        for r in group:
            n = r.inputs.shape[0]
            r.future.set_result(out[start : start + n])
            start += n
        return int(batch.shape[0])
    except Exception as exc:  # the callers re-raise it in their own threads
        for r in group:
            if not r.future.done():
                r.future.set_exception(exc)
        return 0


class Batcher:
    """One batcher thread. `on_batch(rows)` is told the size of every model call it makes, and
    `on_cpu(seconds)` the CPU time the thread spent on it (the pod's per-stage CPU figures)."""

    def __init__(
        self,
        max_windows: int = 64,
        wait_seconds: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
        name: str = "embed-batcher",
        on_cpu: Callable[[float], None] | None = None,
    ) -> None:
        self.max_windows = max_windows  # rows collected per round (all groups together)
        self.wait_seconds = wait_seconds
        self.on_batch = on_batch
        self.on_cpu = on_cpu
        self.name = name
        self._queue: queue.SimpleQueue[_Request | _JointRequest | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def batched(self, owner: Any, name: str, call: BatchFn) -> BatchFn:
        """`call` (one of `owner`'s, named `name`) routed through this batcher: concurrent callers'
        inputs of one shape are concatenated into one `call`, and each caller gets its own rows."""

        def run(inputs: np.ndarray) -> np.ndarray:
            inputs = np.ascontiguousarray(inputs, dtype=np.float32)
            if inputs.ndim < 2 or inputs.shape[0] == 0 or self._stopped or self._thread is None:
                return np.asarray(call(inputs))
            req = _Request(owner, name, call, inputs)
            self._queue.put(req)
            return req.future.result()

        return run

    def joint(self, owner: Any, name: str, call: Callable[[list[In]], list[Out]]) -> Callable[[In], Out]:
        """`call` (one of `owner`'s, named `name`) run once over every caller queued meanwhile:
        each caller passes its own input and gets its own output back."""

        def run(inputs: In) -> Out:
            if self._stopped or self._thread is None:
                return call([inputs])[0]
            req = _JointRequest(owner, name, call, inputs)
            self._queue.put(req)
            return req.future.result()

        return run

    def embed_fn(self, model: Embedder) -> EmbedFn:
        """The `embed` callable handed to one stream's engine session (bound to that stream's model).

        A model whose rows depend on their batch (INT8: activations scaled by the batch's range) is
        called by the stream's own thread, never batched with other streams: a stream's result must
        be what it would be alone (tests), and onnxruntime releases the GIL, so the calls of several
        engine threads still run side by side."""
        if not model.rows_independent:
            return self._direct(model.embed)
        return self.batched(model, "embed", model.embed)

    def _direct(self, call: BatchFn) -> BatchFn:
        """`call` run by the caller's own thread, its CPU time still counted as this batcher's stage
        (`on_cpu`) and noted as taken (`attributed_cpu`), so the caller's own account leaves it out."""

        def run(inputs: np.ndarray) -> np.ndarray:
            cpu = time.thread_time()
            try:
                return call(inputs)
            finally:
                spent = time.thread_time() - cpu
                _attributed.seconds = attributed_cpu() + spent
                if self.on_cpu is not None:
                    self.on_cpu(spent)

        return run

    def segment_fn(self, segmentation_model: Segmenter) -> SegmentFn:
        """The `segment` callable handed to one stream's segmentation session: chunks [B, T] ->
        that stream's rows of `segmentation_model.activity(batch).hard` (bound to that model)."""
        return self.batched(segmentation_model, "segment", lambda chunks: segmentation_model.activity(chunks).hard)

    def _collect(self, first: _Request | _JointRequest) -> list[_Request | _JointRequest]:
        batch = [first]
        count = first.rows
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
            count += item.rows
        return batch

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            for group in group_requests(self._collect(first)):
                cpu = time.thread_time()
                n = run_group(group)
                if self.on_cpu is not None:
                    self.on_cpu(time.thread_time() - cpu)
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


# The name the pod and its tests have always used; the class batches any model call.
BatchingEmbedder = Batcher
