"""One `/ws/stream` connection: a receive loop and a worker, glued by a bounded queue.

Receive loop (event loop, cheap): read a message, validate it with the pure functions of
`protocol`, decode PCM, enforce limits, queue audio in steps. When the stream's queue holds
`max_session_queue_seconds` of audio it stops reading, so TCP pushes back on the client.

Worker: take queued audio (merging binary steps it fell behind on), run the engine session in
the pod's thread pool, send the result. Audio that waited longer than `max_queue_delay_seconds`
means the pod is overloaded: the stream is shed with `overloaded` (1013), not left to lag.

Errors close only this stream; the engine session lives in this object and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from inference_pod import engine, protocol
from inference_pod.engine import Segment, ServingModel, StreamRoutes
from inference_pod.pod import Pod
from inference_pod.protocol import ErrorCode, ProtocolError, StreamConfig

log = logging.getLogger(__name__)


@dataclass
class Job:
    samples: np.ndarray  # at the stream's sample rate
    sequence: int
    received_at: float  # monotonic time the newest message in it arrived
    mergeable: bool  # binary steps may be merged when behind; JSON chunks each get their own reply
    queued_at: float = field(default_factory=time.monotonic)


class _Marker:
    def __init__(self, reason: str) -> None:
        self.reason = reason


# A stream whose audio waited this many times `max_queue_delay_seconds` is shed even when it is
# not the newest: no stream's latency may grow without bound.
HARD_DELAY_FACTOR = 3.0

END = _Marker("end")
SHUTDOWN = _Marker("shutdown")


class EngineStream:
    """The engine side of one stream, used only from worker threads, one call at a time."""

    def __init__(self, model: ServingModel, routes: StreamRoutes, sample_rate: int) -> None:
        self.session = model.open_stream(routes)
        # A streaming resampler keeps filter state across chunks (one-shot per chunk would click).
        self.resampler = (
            soxr.ResampleStream(sample_rate, engine.ENGINE_SAMPLE_RATE, 1, dtype="float32")
            if sample_rate != engine.ENGINE_SAMPLE_RATE
            else None
        )

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """Audio as it arrived (any framing): the session steps on its own clock
        (voiceflow.STREAM_FEED_SAMPLES from the stream's start) and returns the segments it updated."""
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples, last=False)
        return self.session.feed(np.asarray(samples, dtype=np.float32)) if samples.size else []

    def finish(self) -> tuple[list[Segment], list[Segment]]:
        """End of audio: the resampler's tail, then the session's last, partial step.
        Returns what that changed (the last live update, all final) and the whole stream's result."""
        reports: list[list[Segment]] = []
        if self.resampler is not None:
            tail = self.resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if tail.size:
                reports.append(self.session.feed(np.asarray(tail, dtype=np.float32)))
        reports.append(self.session.flush())
        return _newest(reports), list(self.session.finish())


def _newest(reports: list[list[Segment]]) -> list[Segment]:
    """Several engine reports as one update: a later report's view of a segment supersedes an
    earlier one. Keyed by (speaker, start), not start alone: with the segmentation pipeline two
    speakers' segments may overlap, even start at the same frame, and both must get through."""
    updated: dict[tuple[str, float], Segment] = {}
    for report in reports:
        for seg in report:
            updated[engine.segment_key(seg)] = seg
    return sorted(updated.values(), key=lambda seg: (seg.start, str(seg.speaker), seg.end))


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


class StreamConnection:
    def __init__(self, ws: WebSocket, pod: Pod, config: StreamConfig) -> None:
        self.ws = ws
        self.pod = pod
        self.settings = pod.settings
        self.config = config
        self.session_id = uuid.uuid4().hex
        self.started = False  # a start message was accepted
        self.audio_seen = False
        self.model: ServingModel | None = None  # pinned at the first audio (or start) for the stream's life
        self.engine: EngineStream | None = None
        self.queue: asyncio.Queue[Job | _Marker] = asyncio.Queue()
        self.queued_seconds = 0.0
        self._room = asyncio.Event()
        self._room.set()
        self.pending: list[np.ndarray] = []
        self.pending_samples = 0
        self.binary_index = -1
        self.json_index = -1
        self.last_sequence = 0  # of the newest audio message answered: the end's result repeats it
        self.received_seconds = 0.0
        self.first_audio_at: float | None = None
        self.client_gone = False
        self._send_lock = asyncio.Lock()
        self._recv_task: asyncio.Task[None] | None = None
        self._work_task: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] | None = None
        self._shutting_down = False
        self._closing: asyncio.Task[None] | None = None
        self._shed: ProtocolError | None = None

    # --- entry point ----------------------------------------------------------------------------

    async def run(self) -> None:
        self.done = asyncio.get_running_loop().create_future()
        self._recv_task = asyncio.create_task(self._receive_loop())
        self._work_task = asyncio.create_task(self._work_loop())
        for task in (self._recv_task, self._work_task):
            # Whichever task loses the race may end with an exception nobody awaits (it is
            # reported through the winner); mark it retrieved so asyncio does not log it.
            task.add_done_callback(_retrieve)
        tasks: set[asyncio.Task[None]] = {self._recv_task, self._work_task}
        try:
            while tasks:
                finished, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                if self._shed is not None:
                    for other in tasks:
                        other.cancel()
                    await self._fail(self._shed)
                    return
                for task in finished:
                    if task.cancelled():
                        continue
                    exc = task.exception()
                    if exc is not None:
                        for other in tasks:
                            other.cancel()
                        await self._fail(exc)
                        return
                    if task is self._recv_task and self.client_gone:
                        for other in tasks:
                            other.cancel()
                        return
        finally:
            for task in (self._recv_task, self._work_task):
                if not task.done():
                    task.cancel()
            if self.audio_seen:
                self.pod.metrics.streams_active.dec()
            if not self.done.done():
                self.done.set_result(None)

    @property
    def sheddable(self) -> bool:
        return self.audio_seen and self._shed is None and not self._shutting_down and not self.client_gone

    def shed(self, message: str) -> None:
        """Drop this stream for load: `overloaded` (1013); its queued audio is discarded."""
        self._shed = ProtocolError(ErrorCode.OVERLOADED, message)
        for task in (self._recv_task, self._work_task):
            if task is not None and not task.done():
                task.cancel()

    def begin_shutdown(self) -> None:
        """Stop reading; the worker finishes the queued audio, sends `final` and closes 1012."""
        self._shutting_down = True
        if self._recv_task is not None and not self._recv_task.done():
            self._recv_task.cancel()
        self._flush_pending(time.monotonic())
        self.queue.put_nowait(SHUTDOWN)

    def abort_shutdown(self) -> None:
        """Grace period over: close now."""
        if self._work_task is not None and not self._work_task.done():
            self._work_task.cancel()
        self._closing = asyncio.create_task(self._close(protocol.CLOSE_SERVICE_RESTART, "server shutting down"))

    # --- receive side ---------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        idle = self.settings.idle_timeout_seconds
        while True:
            await self._room.wait()  # backpressure: do not read while our queue is full
            try:
                async with asyncio.timeout(idle):
                    message = await self.ws.receive()
            except TimeoutError:
                raise ProtocolError(ErrorCode.IDLE_TIMEOUT, f"no message for {idle:g} s; closing idle stream") from None
            if message["type"] == "websocket.disconnect":
                self.client_gone = True
                return
            now = time.monotonic()
            data = message.get("bytes")
            if data is not None:
                protocol.check_frame_size(len(data), self.settings.max_frame_bytes)
                self._on_audio(protocol.decode_pcm(data, self.config.encoding), now, binary=True, sequence=None)
                continue
            text = message.get("text")
            if text is None:
                continue
            protocol.check_frame_size(len(text.encode("utf-8", "surrogatepass")), self.settings.max_text_frame_bytes)
            parsed = protocol.parse_text_message(text)
            if isinstance(parsed, protocol.Start):
                await self._on_start(parsed.config)
            elif isinstance(parsed, protocol.AudioChunk):
                self._on_audio(parsed.samples, now, binary=False, sequence=parsed.sequence)
            else:  # End
                self._flush_pending(now)
                self.queue.put_nowait(END)
                return

    async def _on_start(self, config: StreamConfig) -> None:
        if self.started or self.audio_seen:
            raise ProtocolError(ErrorCode.UNEXPECTED_MESSAGE, "start must be the first message, and only once")
        self.started = True
        self.config = config
        self.model = self.pod.model
        await self.send(
            protocol.ready_message(self.session_id, self.model.version, config, self.settings.announced_limits())
        )

    def _on_audio(self, samples: np.ndarray, now: float, binary: bool, sequence: int | None) -> None:
        if not self.audio_seen:
            self.audio_seen = True
            self.first_audio_at = now
            self.model = self.model or self.pod.model
            self.pod.metrics.streams.inc()
            self.pod.metrics.streams_active.inc()
        seconds = samples.size / self.config.sample_rate
        self.received_seconds += seconds
        if self.received_seconds > self.settings.max_session_seconds:
            raise ProtocolError(
                ErrorCode.SESSION_TOO_LONG,
                f"stream exceeded the {self.settings.max_session_seconds:g} s session limit",
            )
        assert self.first_audio_at is not None
        if protocol.exceeds_realtime(
            self.received_seconds,
            now - self.first_audio_at,
            self.settings.max_realtime_factor,
            self.settings.realtime_burst_seconds,
        ):
            raise ProtocolError(
                ErrorCode.TOO_FAST,
                f"audio arrives faster than {self.settings.max_realtime_factor:g}x real time "
                f"(after a {self.settings.realtime_burst_seconds:g} s burst); pace the stream",
            )
        if binary:
            self.binary_index += 1
            self.pending.append(samples)
            self.pending_samples += samples.size
            if self.pending_samples >= self.settings.step_seconds * self.config.sample_rate:
                self._flush_pending(now)
        else:
            self.json_index += 1
            seq = sequence if sequence is not None else self.json_index
            # Binary audio still waiting for a full step goes first, so order is kept.
            parts = [*self.pending, samples]
            self.pending, self.pending_samples = [], 0
            self._enqueue(Job(np.concatenate(parts) if len(parts) > 1 else samples, seq, now, mergeable=False))

    def _flush_pending(self, now: float) -> None:
        if not self.pending:
            return
        samples = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending, self.pending_samples = [], 0
        self._enqueue(Job(samples, self.binary_index, now, mergeable=True))

    def _enqueue(self, job: Job) -> None:
        self.queue.put_nowait(job)
        self.queued_seconds += job.samples.size / self.config.sample_rate
        if self.queued_seconds >= self.settings.max_session_queue_seconds:
            self._room.clear()

    # --- worker side ----------------------------------------------------------------------------

    def _take_merged(self, first: Job) -> Job:
        """When behind, merge consecutive queued binary steps: one engine call, one result."""
        if not first.mergeable:
            return first
        parts, last = [first.samples], first
        while not self.queue.empty():
            nxt = self.queue._queue[0]  # type: ignore[attr-defined]  # peek: stop at a JSON chunk or marker
            if not isinstance(nxt, Job) or not nxt.mergeable:
                break
            self.queue.get_nowait()
            parts.append(nxt.samples)
            last = nxt
        if len(parts) == 1:
            return first
        return Job(np.concatenate(parts), last.sequence, last.received_at, True, first.queued_at)

    async def _work_loop(self) -> None:
        while True:
            item = await self.queue.get()
            if isinstance(item, _Marker):
                await self._finish(item.reason)
                return
            job = self._take_merged(item)
            self.queued_seconds = max(0.0, self.queued_seconds - job.samples.size / self.config.sample_rate)
            if self.queued_seconds < self.settings.max_session_queue_seconds:
                self._room.set()
            self._check_delay(time.monotonic() - job.queued_at)
            started, segments = await self.pod.run_engine(self._feed, job)
            # The wait in the worker pool counts too: it is where an overloaded pod's backlog sits.
            self._check_delay(started - job.queued_at)
            if segments is None:
                raise self._overloaded(started - job.queued_at)
            latency = time.monotonic() - job.received_at
            self.last_sequence = job.sequence
            await self.send(protocol.result_message(job.sequence, segments, latency * 1000.0))
            self.pod.metrics.latency.labels(endpoint="stream").observe(latency)
            self.pod.metrics.requests.labels(endpoint="stream").inc()
            self.pod.metrics.audio_seconds.inc(job.samples.size / self.config.sample_rate)

    def _engine(self) -> EngineStream:
        if self.engine is None:  # created lazily: an idle connection costs no engine state
            assert self.model is not None
            self.engine = EngineStream(self.model, self.pod.routes, self.config.sample_rate)
        return self.engine

    def _feed(self, job: Job) -> tuple[float, list[Segment] | None]:
        """Worker thread: feed the job, unless it waited so long its result is worthless (None).

        Skipping here, not only at dequeue, is what bounds latency when the pool's own queue is
        long: a late job costs nothing, so the backlog drains at once instead of being worked off.
        """
        started = time.monotonic()
        late = started - job.queued_at > HARD_DELAY_FACTOR * self.settings.max_queue_delay_seconds
        if late and not self._shutting_down:
            return started, None
        return started, self._engine().feed(job.samples)

    def _check_delay(self, waited: float) -> None:
        """How long the oldest audio of a job waited: the pod's "am I behind" signal."""
        self.pod.observe_queue_delay(waited)
        limit = self.settings.max_queue_delay_seconds
        if waited > limit and not self._shutting_down:
            self.pod.shed_newest()  # soft: free capacity by dropping the newest stream
            if waited > HARD_DELAY_FACTOR * limit:  # hard: this stream's latency is unbounded otherwise
                raise self._overloaded(waited)

    @staticmethod
    def _overloaded(waited: float) -> ProtocolError:
        return ProtocolError(
            ErrorCode.OVERLOADED,
            f"server overloaded: audio waited {waited:.1f} s for processing; retry later",
        )

    def _finish_engine(self) -> tuple[list[Segment], list[Segment]]:
        if self.engine is None and not self.audio_seen:
            return [], []
        return self._engine().finish()

    async def _finish(self, reason: str) -> None:
        began = time.monotonic()
        closing, segments = await self.pod.run_engine(self._finish_engine)
        if closing:
            # What the end finalized goes out live too, before `final`: the segments sent with
            # final=true are then exactly the `final` message's (docs/protocol.md).
            latency = (time.monotonic() - began) * 1000.0
            await self.send(protocol.result_message(self.last_sequence, closing, latency))
        await self.send(protocol.final_message(segments, reason=reason))
        if reason == "shutdown":
            await self._close(protocol.CLOSE_SERVICE_RESTART, "server shutting down")
        else:
            await self._close(protocol.CLOSE_NORMAL, "end of stream")

    # --- output ---------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        if self.client_gone:
            return
        async with self._send_lock:
            try:
                await self.ws.send_text(json.dumps(message, separators=(",", ":")))
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.client_gone = True

    async def _close(self, code: int, reason: str) -> None:
        if self.ws.application_state == WebSocketState.DISCONNECTED or self.client_gone:
            return
        with contextlib.suppress(RuntimeError, OSError):
            await self.ws.close(code=code, reason=reason[:120])
        self.client_gone = True

    async def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, ProtocolError):
            err = exc
        else:
            log.error("stream %s failed", self.session_id, exc_info=exc)
            err = ProtocolError(ErrorCode.INTERNAL_ERROR, "internal error while processing audio")
        self.pod.metrics.errors.labels(code=err.code.value).inc()
        await self.send(protocol.error_message(err.code, err.message))
        await self._close(err.close_code, err.message)
