"""A small Python client for Protocol v1: stream a file in real time (or faster) and print results.

`voiceflow stream FILE --url ws://host:3000/ws/stream` uses it; the tests and the DER comparison
use `stream_file` directly. Audio is sent as binary pcm_f32le frames (lossless), paced against
the wall clock so the server sees a live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
# What a server that announces no limits in `ready` enforces (docs/protocol.md, `too_fast`).
DEFAULT_LIMITS = {"max_realtime_factor": 4.0, "realtime_burst_seconds": 10.0}
# Stay this far inside the announced bound: the server's clock starts when the first frame arrives,
# and network jitter can deliver several frames at once.
PACE_MARGIN = 0.8
READY_TIMEOUT_S = 30.0
SendFrame = Callable[[np.ndarray], Awaitable[None]]
# Sends a stream's audio through `send`, given the pace limits the server announced.
Producer = Callable[[SendFrame, dict[str, Any]], Awaitable[None]]


def earliest_send_s(audio_start_s: float, audio_end_s: float, speed: float, limits: dict[str, Any]) -> float:
    """Seconds after the first frame when the frame holding [audio_start_s, audio_end_s) may be sent:
    `speed` x real time (0 = no pace of our own), but never faster than the server's announced
    `realtime_burst_seconds + max_realtime_factor x elapsed`, with a margin."""
    factor = float(limits.get("max_realtime_factor", DEFAULT_LIMITS["max_realtime_factor"]))
    burst = float(limits.get("realtime_burst_seconds", DEFAULT_LIMITS["realtime_burst_seconds"]))
    own = audio_start_s / speed if speed > 0 else 0.0
    bound = (audio_end_s - PACE_MARGIN * burst) / (PACE_MARGIN * factor)
    return max(own, bound, 0.0)


@dataclass
class StreamOutcome:
    final: list[dict[str, Any]] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ready: dict[str, Any] | None = None
    close_code: int | None = None
    latencies_ms: list[float] = field(default_factory=list)  # client-side: frame sent -> its result


def load_file(path: str) -> np.ndarray:
    from voiceflow.audio import load_audio

    return np.asarray(load_audio(path, sample_rate=SAMPLE_RATE), dtype=np.float32)


async def stream_samples(
    samples: np.ndarray,
    url: str,
    speed: float = 1.0,
    chunk_seconds: float = 0.1,
    token: str | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> StreamOutcome:
    """Send 16 kHz float32 `samples` as binary frames, `speed` x real time (0 = as fast as the server
    allows: the pace it announces in `ready`), then `end`."""
    chunk = max(1, int(chunk_seconds * SAMPLE_RATE))

    async def produce(send: SendFrame, limits: dict[str, Any]) -> None:
        t0 = time.monotonic()
        for start in range(0, samples.size, chunk):
            end = min(start + chunk, samples.size)
            delay = t0 + earliest_send_s(start / SAMPLE_RATE, end / SAMPLE_RATE, speed, limits) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await send(samples[start:end])

    return await stream_audio(url, produce, SAMPLE_RATE, token, on_message)


async def stream_source(
    frames: AsyncIterable[np.ndarray],
    sample_rate: int,
    url: str,
    token: str | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> StreamOutcome:
    """Send a live source's float32 blocks (a microphone: already real time) as they come, at the
    source's own rate (the server resamples), then `end` when the source ends."""

    async def produce(send: SendFrame, limits: dict[str, Any]) -> None:
        async for frame in frames:
            await send(frame)

    return await stream_audio(url, produce, sample_rate, token, on_message)


async def stream_audio(
    url: str,
    produce: Producer,
    sample_rate: int = SAMPLE_RATE,
    token: str | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> StreamOutcome:
    """One stream: `start` (pcm_f32le at `sample_rate`), then `produce(send, limits)` sends the audio
    (`limits`: the pace the server announced in `ready`), then `end`; every message the server sends
    goes to `on_message` and into the outcome."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    headers = {"Authorization": f"Bearer {token}"} if token else None
    outcome = StreamOutcome()
    sent_at: dict[int, float] = {}
    ready = asyncio.Event()
    async with connect(url, additional_headers=headers, max_size=None, open_timeout=30) as ws:

        async def send(samples: np.ndarray) -> None:
            sent_at[len(sent_at)] = time.monotonic()
            await ws.send(np.asarray(samples, dtype="<f4").tobytes())

        async def sender() -> None:
            # The server may refuse the stream at once (bad query, limits): the receive loop below
            # reads its error, so a send on a closed connection just ends this task.
            with contextlib.suppress(ConnectionClosed):
                try:
                    await send_all()
                except Exception:
                    await ws.close(1001, "client audio source failed")  # ends the receive loop below
                    raise

        async def send_all() -> None:
            await ws.send(
                json.dumps(
                    {"type": "start", "sample_rate": sample_rate, "encoding": "pcm_f32le", "protocol_version": 1}
                )
            )
            # The pace limit comes with `ready`; an error instead ends the stream (and this task).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), READY_TIMEOUT_S)
            await produce(send, (outcome.ready or {}).get("limits") or DEFAULT_LIMITS)
            await ws.send(json.dumps({"type": "end"}))

        send_task = asyncio.create_task(sender())
        try:
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "result":
                    outcome.results.append(msg)
                    t = sent_at.get(int(msg.get("sequence", -1)))
                    if t is not None:
                        outcome.latencies_ms.append((time.monotonic() - t) * 1000.0)
                elif kind == "final":
                    outcome.final = msg["segments"]
                elif kind == "error":
                    outcome.errors.append(msg)
                elif kind == "ready":
                    outcome.ready = msg
                    ready.set()
                if on_message is not None:
                    on_message(msg)
        except ConnectionClosed:
            pass
        finally:
            send_task.cancel()
        outcome.close_code = ws.close_code
        failure = send_task.exception() if send_task.done() and not send_task.cancelled() else None
        if failure is not None:
            raise failure  # the audio source failed (a microphone that went away): the caller says so
    return outcome


def print_message(msg: dict[str, Any]) -> None:
    kind = msg.get("type")
    if kind == "ready":
        print(f"ready: session {msg['session_id']} model {msg['model_version']}", flush=True)
    elif kind == "result":
        for s in msg["segments"]:
            flag = "final" if s["final"] else "draft"
            print(
                f"{s['start']:8.2f} {s['end']:8.2f}  {s['speaker']:<12} {flag}   "
                f"(seq {msg['sequence']}, {msg['latency_ms']:.1f} ms)",
                flush=True,
            )
    elif kind == "final":
        print(f"final ({msg.get('reason', 'end')}): {len(msg['segments'])} segments", flush=True)
        for s in msg["segments"]:
            print(f"{s['start']:8.2f} {s['end']:8.2f}  {s['speaker']}", flush=True)
    elif kind == "error":
        print(f"error {msg['code']}: {msg['message']}", flush=True)
