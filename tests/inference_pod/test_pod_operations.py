"""Operations over a real socket: auth, per-token limits, hot reload under a live stream,
load shedding, and graceful shutdown on SIGTERM (the real `python -m inference_pod` process)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import numpy as np
import pytest
from pod_support import ROOT, drain, recv_json, running_pod, speech
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from inference_pod import engine

# Every test here talks to a real socket: bound each one so a hang fails instead of stalling CI.
pytestmark = pytest.mark.timeout(240)

KEY = "pod-test-signing-key-0123456789abcdef"
START = json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_f32le"})
BUNDLED = ROOT / "voiceflow" / "models" / "ge2e.onnx"


def token(sub: str = "alice", exp_in: float = 300, typ: str = "access", key: str = KEY) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time() + exp_in), "typ": typ, "role": "operator"}, key, "HS256")


def refused_status(url: str, **kwargs) -> tuple[int, dict]:
    with pytest.raises(InvalidStatus) as info, connect(url, open_timeout=10, **kwargs):
        pass
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}")


def test_auth_refuses_before_any_audio_and_limits_per_token() -> None:
    with running_pod(jwt_key=KEY, max_connections_per_token=1) as p:
        status, body = refused_status(p.ws)
        assert status == 401 and body["code"] == "unauthorized"
        status, body = refused_status(p.ws + "?token=" + token(exp_in=-30))
        assert status == 401 and "expired" in body["message"]
        status, _ = refused_status(p.ws + "?token=" + token(key="wrong-key-wrong-key-wrong-key-00"))
        assert status == 401
        status, body = refused_status(p.ws + "?token=" + token(typ="refresh"))
        assert status == 401
        with connect(p.ws, additional_headers={"Authorization": "Bearer " + token()}, open_timeout=10) as ws:
            ws.send(START)
            assert recv_json(ws)["type"] == "ready"
            # the same subject may not open a second stream while this one is open (limit 1) ...
            status, body = refused_status(p.ws + "?token=" + token())
            assert status == 429 and body["code"] == "too_many_connections"
            # ... another subject may
            with connect(p.ws + "?token=" + token("bob"), open_timeout=10) as other:
                other.send(START)
                assert recv_json(other)["type"] == "ready"
        assert httpx.post(p.http + "/infer", content=b"x").status_code == 401
        audio = speech(2.0)
        r = httpx.post(
            p.http + "/infer", json=audio.tolist(), headers={"Authorization": "Bearer " + token()}, timeout=60
        )
        assert r.status_code == 200, r.text
        assert p.pod.metrics.errors.labels(code="unauthorized")._value.get() >= 5


def test_hot_reload_under_a_live_stream(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(BUNDLED, model_dir / "model.onnx")
    meta = json.loads(BUNDLED.with_suffix(".json").read_text())
    (model_dir / "model.json").write_text(json.dumps({**meta, "version": "v-old"}))
    audio = speech(6.0)

    def replace(name: str, data: bytes) -> None:
        tmp = model_dir / f".{name}.tmp"  # written aside then renamed, as a volume update does
        tmp.write_bytes(data)
        os.replace(tmp, model_dir / name)

    with running_pod(model_path=str(model_dir), max_realtime_factor=50.0, realtime_burst_seconds=60.0) as p:
        assert httpx.get(p.http + "/ready").json()["model_version"] == "v-old"
        with connect(p.ws, open_timeout=10) as live:
            live.send(START)
            assert recv_json(live)["model_version"] == "v-old"
            half = audio.size // 2
            for i in range(0, half, 4000):
                live.send(audio[i : i + 4000].astype("<f4").tobytes())

            # 1) a bad model file is refused; the old model keeps serving
            replace("model.onnx", b"this is not an onnx model")
            deadline = time.monotonic() + 20
            while p.pod.metrics.reloads.labels(result="failed")._value.get() < 1:
                assert time.monotonic() < deadline, "bad model was never tried"
                time.sleep(0.1)
            ready = httpx.get(p.http + "/ready").json()
            assert ready["status"] == "ready" and ready["model_version"] == "v-old"
            assert ready["last_reload_error"]

            # 2) a good new model is loaded, warmed and serves new streams
            (model_dir / "model.json").write_text(json.dumps({**meta, "version": "v-new"}))
            replace("model.onnx", BUNDLED.read_bytes())
            while httpx.get(p.http + "/ready").json()["model_version"] != "v-new":
                assert time.monotonic() < deadline + 20, "new model never became current"
                time.sleep(0.1)
            with connect(p.ws, open_timeout=10) as fresh:
                fresh.send(START)
                assert recv_json(fresh)["model_version"] == "v-new"
            metrics = httpx.get(p.http + "/metrics").text
            assert 'inference_model_info{sha256="' in metrics and 'version="v-new"' in metrics
            assert 'version="v-old"' not in metrics

            # 3) the live stream never dropped: it finishes on its own (old) model
            for i in range(half, audio.size, 4000):
                live.send(audio[i : i + 4000].astype("<f4").tobytes())
            live.send(json.dumps({"type": "end"}))
            messages, code = drain(live)
        assert code == 1000
        assert messages[-1]["type"] == "final" and messages[-1]["segments"]
        assert not [m for m in messages if m["type"] == "error"]


class TimedSession:
    """Stands in for the engine's stream session: every feed takes `seconds` and finds nothing."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def feed(self, samples: np.ndarray) -> list:
        time.sleep(self.seconds)
        return []

    def flush(self) -> list:
        return []

    def finish(self) -> list:
        return []


def engine_taking(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Every stream the pod opens from now on feeds a TimedSession of `seconds` per feed."""
    monkeypatch.setattr(engine, "new_stream_session", lambda *_: TimedSession(seconds))


def test_overloaded_pod_sheds_streams_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    engine_taking(monkeypatch, 0.4)  # an engine on a starved CPU
    with running_pod(workers=1, max_queue_delay_seconds=0.5, max_realtime_factor=100.0) as p:
        frame = np.zeros(8000, "<f4").tobytes()
        clients = [connect(p.ws, open_timeout=10) for _ in range(3)]
        try:
            for _ in range(6):
                for ws in clients:
                    with contextlib.suppress(ConnectionClosed):  # a shed client is closed mid-send
                        ws.send(frame)
            outcomes = [drain(ws, timeout=30) for ws in clients]
        finally:
            for ws in clients:
                ws.close()
        shed = [(m, c) for m, c in outcomes if c == 1013]
        assert shed, outcomes
        for messages, _ in shed:
            assert messages[-1]["type"] == "error" and messages[-1]["code"] == "overloaded"
        assert p.pod.metrics.errors.labels(code="overloaded")._value.get() >= 1
        assert httpx.get(p.http + "/health").status_code == 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_drains_streams_with_final_and_1012(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VOICEFLOW_PORT": str(port),
        "VOICEFLOW_HOST": "127.0.0.1",
        "VOICEFLOW_SHUTDOWN_GRACE_SECONDS": "15",
        "VOICEFLOW_LOG_LEVEL": "warning",
        "VOICEFLOW_MAX_REALTIME_FACTOR": "50",
        "VOICEFLOW_REALTIME_BURST_SECONDS": "60",
        "VOICEFLOW_MAX_QUEUE_DELAY_SECONDS": "30",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "inference_pod"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.2)
        audio = speech(4.0)
        url = f"ws://127.0.0.1:{port}/ws/stream"
        with connect(url, open_timeout=10) as ws:
            ws.send(START)
            assert recv_json(ws)["type"] == "ready"
            for i in range(0, audio.size, 4000):
                ws.send(audio[i : i + 4000].astype("<f4").tobytes())
            time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            messages, code = drain(ws, timeout=30)
        assert code == 1012
        final = [m for m in messages if m["type"] == "final"]
        assert final and final[0]["reason"] == "shutdown"
        # the queued audio was processed before closing: the final covers (nearly) all of it
        assert max(s["end"] for s in final[0]["segments"]) > 3.0
        assert proc.wait(timeout=30) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_backpressure_slows_a_fast_sender_instead_of_failing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from inference_pod.stream import StreamConnection

    engine_taking(monkeypatch, 0.02)  # slower than the client can send
    peak: list[float] = [0.0]
    original = StreamConnection._enqueue

    def recording_enqueue(self: StreamConnection, job) -> None:
        original(self, job)
        peak[0] = max(peak[0], self.queued_seconds)

    monkeypatch.setattr(StreamConnection, "_enqueue", recording_enqueue)
    with running_pod(
        max_session_queue_seconds=1.0,
        max_queue_delay_seconds=30.0,
        max_realtime_factor=1000.0,
        realtime_burst_seconds=1000.0,
        step_seconds=0.25,
    ) as p:
        frame = np.zeros(4000, "<f4").tobytes()  # 0.25 s
        with connect(p.ws, open_timeout=10) as ws:
            ws.send(START)
            assert recv_json(ws)["type"] == "ready"
            for _ in range(120):  # 30 s of audio as fast as the socket takes it
                ws.send(frame)
            ws.send(json.dumps({"type": "end"}))
            messages, code = drain(ws)
    assert code == 1000 and messages[-1]["type"] == "final"
    assert not [m for m in messages if m["type"] == "error"]
    # the stream's queue never grew past its bound (plus the step that crossed it)
    assert 0 < peak[0] <= 1.0 + 0.25 + 1e-9


def test_connection_limit_refuses_before_the_handshake() -> None:
    with running_pod(max_connections=1) as p:
        with connect(p.ws, open_timeout=10) as first:
            first.send(START)
            assert recv_json(first)["type"] == "ready"
            status, body = refused_status(p.ws)
            assert status == 503 and body["code"] == "too_many_connections"
        deadline = time.monotonic() + 10
        while p.call(lambda: len(p.pod.connections)) and time.monotonic() < deadline:
            time.sleep(0.05)
        with connect(p.ws, open_timeout=10) as again:  # the slot is free again once the first closed
            again.send(START)
            assert recv_json(again)["type"] == "ready"
        text = httpx.get(p.http + "/metrics").text
        assert 'inference_errors_total{code="too_many_connections"} 1.0' in text
