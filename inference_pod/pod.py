"""Process-wide state of one serving pod: settings, model, batcher, worker pool, limits, metrics.

The routes are thin shells over this object; it owns every resource started at boot and stopped
at shutdown, and the one gate through which engine work leaves the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from inference_pod import engine
from inference_pod.auth import ConnectionLimiter
from inference_pod.batching import Batcher, attributed_cpu
from inference_pod.memory import HeapTrimmer
from inference_pod.metrics import Metrics
from inference_pod.model_manager import LoadedModel, ModelManager
from inference_pod.settings import Settings
from inference_pod.shared_limits import TokenLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")


class LiveStream(Protocol):
    """What the pod needs of one open stream (inference_pod.stream.StreamConnection) to shed and
    drain it. Streams are built on the pod, never the reverse: this module does not import them."""

    @property
    def sheddable(self) -> bool: ...

    @property
    def first_audio_at(self) -> float | None: ...

    @property
    def done(self) -> asyncio.Future[None] | None: ...  # set when the stream has ended

    def shed(self, message: str) -> None: ...

    def begin_shutdown(self) -> None: ...

    def abort_shutdown(self) -> None: ...


class Pod:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(pipeline=settings.pipeline)
        self.jwt_key = settings.resolved_jwt_key()
        self.models = ModelManager(
            settings.model_path,
            on_change=self._on_model_change,
            on_failure=lambda _msg: self.metrics.reloads.labels(result="failed").inc(),
            config=settings.engine,
            segmentation_path=settings.segmentation_model_path,
        )
        self.batcher = self._batcher("embed-batcher", "embedding", self.metrics.batch_size.observe)
        # The segmentation network's chunks (segmentation pipeline) are batched across streams the
        # same way, on a thread of their own so they run beside the embedding batches, not behind them.
        self.segment_batcher = self._batcher(
            "segment-batcher", "segmentation", self.metrics.segmentation_batch_size.observe
        )
        # Streams' VAD frames (embedding pipelines) in one model run: two model calls per round for
        # all waiting streams instead of two per stream. A round holds at most batch_max_windows streams.
        self.vad_batcher = self._batcher("vad-batcher", "vad")
        vad_owner, vad_call = engine.shared_vad_run()
        # Every stream's network calls go through these batchers (bound to the model it pinned).
        self.routes = engine.StreamRoutes(
            embed=self.batcher.embed_fn,
            segment=self.segment_batcher.segment_fn,
            vad=self.vad_batcher.joint(vad_owner, "vad", vad_call),
        )
        self._engine_cpu = self.metrics.engine_cpu.labels(stage="clustering")
        self.executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="engine")
        # Separate capacity for POST /infer: its long jobs queue here, never in front of stream steps.
        self.infer_executor = ThreadPoolExecutor(max_workers=settings.infer_workers, thread_name_prefix="infer")
        self.infer_requests = 0
        # Replaced by a shared-memory count when several worker processes serve (inference_pod/workers.py).
        self.token_limits: TokenLimiter = ConnectionLimiter(settings.max_connections_per_token)
        self.connections: set[LiveStream] = set()
        self.heap = HeapTrimmer()
        self.pending_jobs = 0
        # Smoothed queue delay of recent engine jobs: the "are we behind" signal for admission.
        # It decays with time too, so once load is gone a stale high value cannot lock new streams out.
        self._delay = 0.0
        self._delay_at = time.monotonic()
        self._last_shed = 0.0
        self.draining = False
        self._watch_task: asyncio.Task[None] | None = None
        self._initial_load = True

    def _batcher(self, name: str, stage: str, on_batch: Callable[[int], None] | None = None) -> Batcher:
        """A cross-stream batcher on the pod's batch settings, its CPU time counted under `stage`."""
        return Batcher(
            max_windows=self.settings.batch_max_windows,
            wait_seconds=self.settings.batch_wait_ms / 1000.0,
            on_batch=on_batch,
            name=name,
            on_cpu=self.metrics.engine_cpu.labels(stage=stage).inc,
        )

    # --- lifecycle ------------------------------------------------------------------------------

    def stream_ended(self) -> None:
        """A stream closed: when none left is receiving audio, hand freed memory back to the OS
        (an idle pod would otherwise stay at the size its busiest moment took)."""
        if not any(c.first_audio_at is not None for c in self.connections):
            self.heap.quiet()

    async def start(self) -> None:
        self.batcher.start()
        self.segment_batcher.start()
        self.vad_batcher.start()
        await self.models.load_initial()
        self._watch_task = asyncio.create_task(self.models.watch(self.settings.reload_poll_seconds))

    async def stop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
        self.batcher.stop()
        self.segment_batcher.stop()
        self.vad_batcher.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.infer_executor.shutdown(wait=False, cancel_futures=True)

    async def drain(self, grace_seconds: float) -> None:
        """SIGTERM: refuse new work, let every stream finish what it has and close 1012, within grace."""
        self.draining = True
        self.metrics.model_ready.set(0)
        conns = list(self.connections)
        log.info("draining %d streams (grace %.1fs)", len(conns), grace_seconds)
        for conn in conns:
            conn.begin_shutdown()
        waits = [c.done for c in conns if c.done is not None]
        if waits:
            _, still = await asyncio.wait(waits, timeout=grace_seconds)
            for conn in conns:
                if conn.done in still:
                    conn.abort_shutdown()

    def _on_model_change(self, loaded: LoadedModel) -> None:
        self.metrics.set_model(loaded.version, loaded.sha256)
        self.metrics.set_pipeline(loaded.pipeline, loaded.segmentation_version or "", loaded.segmentation_sha256 or "")
        if not self._initial_load:
            self.metrics.reloads.labels(result="ok").inc()
        self._initial_load = False

    # --- admission ------------------------------------------------------------------------------

    @property
    def model(self) -> LoadedModel:
        return self.models.current

    DELAY_HALF_LIFE_SECONDS = 1.0
    SHED_INTERVAL_SECONDS = 0.1

    def shed_newest(self) -> None:
        """The pod is behind: drop the most recently started stream (rate-limited).

        Last in, first out: streams that have been running longest keep their latency, and each
        shed frees a whole stream's work, so a few sheds bring an overloaded pod back quickly.
        """
        now = time.monotonic()
        if now - self._last_shed < self.SHED_INTERVAL_SECONDS:
            return
        live = [c for c in self.connections if c.sheddable]
        if not live:
            return
        self._last_shed = now
        max(live, key=lambda c: c.first_audio_at or 0.0).shed("server overloaded; retry later")

    @property
    def queue_delay(self) -> float:
        age = time.monotonic() - self._delay_at
        return self._delay * 0.5 ** (age / self.DELAY_HALF_LIFE_SECONDS)

    def overloaded(self) -> bool:
        return (
            self.pending_jobs >= self.settings.max_pending_jobs
            or self.queue_delay > self.settings.max_queue_delay_seconds / 2
        )

    def observe_queue_delay(self, seconds: float) -> None:
        self._delay = 0.9 * self.queue_delay + 0.1 * seconds
        self._delay_at = time.monotonic()

    # --- engine gate ----------------------------------------------------------------------------

    async def run_engine(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking engine work in the worker pool; the event loop only awaits it."""
        self.pending_jobs += 1
        self.metrics.pending_jobs.set(self.pending_jobs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._timed, fn, *args)
        finally:
            self.pending_jobs -= 1
            self.metrics.pending_jobs.set(self.pending_jobs)

    async def run_infer(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a /infer job on the infer pool: not counted as stream load (no shedding because of it)."""
        return await asyncio.get_running_loop().run_in_executor(self.infer_executor, fn, *args)

    def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn` on an engine thread, its own CPU time counted as the engine's "clustering" stage
        (time waiting on the batchers is theirs, and costs this thread none; model calls a batcher
        had this thread run itself are counted under the batcher's stage, not here)."""
        cpu, elsewhere = time.thread_time(), attributed_cpu()
        try:
            return fn(*args)
        finally:
            self._engine_cpu.inc(max(0.0, time.thread_time() - cpu - (attributed_cpu() - elsewhere)))

    def now(self) -> float:
        return time.monotonic()
