"""Helpers of the pod tests: a real pod on an ephemeral loopback port, in a background thread.

In-process (rather than a subprocess) so tests can reach the pod's state and swap in a slow engine;
the shutdown test runs the real `python -m inference_pod` as a subprocess for the SIGTERM path.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from inference_pod.pod import Pod
from inference_pod.serve import DrainingServer, build_server
from inference_pod.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
AMI = SHARED / "ami-excerpts"


class OnLoopback:
    """The addresses of a pod listening on a loopback port."""

    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/stream"


def infer_wav(pod: OnLoopback, audio: np.ndarray, subtype: str, timeout: float = 120) -> dict[str, Any]:
    """POST `audio` to /infer as a 16 kHz WAV of `subtype`: the body of the 200 it must answer."""
    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format="WAV", subtype=subtype)
    r = httpx.post(pod.http + "/infer", content=buf.getvalue(), timeout=timeout)
    assert r.status_code == 200, r.text
    return dict(r.json())


@dataclass
class RunningPod(OnLoopback):
    server: DrainingServer
    port: int
    thread: threading.Thread

    @property
    def pod(self) -> Pod:
        return self.server.pod

    def call(self, fn: Any) -> Any:
        """Run `fn()` on the server's event loop and return its result (for poking pod state)."""
        loop = self.server._loop
        assert loop is not None

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)


@contextmanager
def running_pod(**overrides: Any) -> Iterator[RunningPod]:
    # Shedding is tested on purpose (with its own limits); elsewhere a CPU-starved CI machine must
    # not shed a test's stream, so the delay bound defaults far above anything a test streams.
    overrides = {"log_level": "warning", "reload_poll_seconds": 0.2, "max_queue_delay_seconds": 30.0, **overrides}
    settings = Settings(host="127.0.0.1", port=1, **overrides)
    server = build_server(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("pod did not start")
        time.sleep(0.02)
    try:
        yield RunningPod(server, port, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def speech(seconds: float = 6.0, name: str = "dev00.wav") -> np.ndarray:
    """Real speech from the shared AMI excerpts (16 kHz float32)."""
    path = AMI / name
    if not path.exists():
        pytest.skip(f"shared data missing: {path}")
    from voiceflow.audio import load_audio

    return load_audio(path)[: int(seconds * 16000)].astype(np.float32)


def recv_json(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    raw = ws.recv(timeout=timeout)
    assert isinstance(raw, str), f"expected a text message, got {type(raw)}"
    return json.loads(raw)


def drain(ws: Any, timeout: float = 60.0) -> tuple[list[dict[str, Any]], int | None]:
    """All messages until the server closes; returns them and the close code."""
    from websockets.exceptions import ConnectionClosed

    messages: list[dict[str, Any]] = []
    try:
        while True:
            messages.append(recv_json(ws, timeout))
    except ConnectionClosed:
        pass
    return messages, ws.close_code
