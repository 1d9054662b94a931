"""Every protocol error path over a real socket: a clear `error`, the right close code, and no harm
to the process or to a stream running beside the hostile ones."""

from __future__ import annotations

import json
import math
import time

import httpx
import numpy as np
import pytest
from pod_support import RunningPod, drain, recv_json, running_pod, speech
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

# Every test here talks to a real socket: bound each one so a hang fails instead of stalling CI.
pytestmark = pytest.mark.timeout(240)


def expect_error(pod_url: str, messages: list[str | bytes], code: str, close: int, query: str = "") -> dict:
    with connect(pod_url + query, open_timeout=10) as ws:
        for m in messages:
            try:
                ws.send(m)
            except ConnectionClosed:
                break  # the server may close on the offending frame before the client is done sending
        received, close_code = drain(ws, timeout=30)
    errors = [m for m in received if m["type"] == "error"]
    assert errors, received
    assert errors[-1]["code"] == code, errors
    assert errors[-1]["message"]
    assert close_code == close
    return errors[-1]


START = json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_f32le"})


@pytest.mark.parametrize(
    ("messages", "code", "close"),
    [
        (["{oops"], "malformed_json", 1007),
        (['["start"]'], "invalid_message", 1007),
        (['{"type":"start","sample_rate":"16000Hz"}'], "invalid_sample_rate", 1007),
        (['{"type":"start","sample_rate":3}'], "invalid_sample_rate", 1007),
        (['{"type":"start","sample_rate":100000000}'], "invalid_sample_rate", 1007),
        (['{"type":"start","encoding":"opus"}'], "unsupported_encoding", 1003),
        (['{"type":"start","protocol_version":7}'], "unsupported_protocol_version", 1003),
        (['{"type":"subscribe"}'], "unknown_message_type", 1003),
        ([START, START], "unexpected_message", 1008),
        ([START, np.array([0.1, math.nan], "<f4").tobytes()], "invalid_audio", 1007),
        ([START, np.array([math.inf], "<f4").tobytes()], "invalid_audio", 1007),
        ([START, b"\x00\x00\x80"], "invalid_audio", 1007),
        (['{"type":"audio_chunk","data":[0.1,NaN],"sequence":0}'], "invalid_audio", 1007),
        (['{"type":"audio_chunk","data":["loud"],"sequence":0}'], "invalid_message", 1007),
        (['{"type":"audio_chunk","data":[0.1],"sequence":"one"}'], "invalid_message", 1007),
        ([b"\x00" * (256 * 1024 + 4)], "frame_too_large", 1009),
        (['{"type":"audio_chunk","data":[' + ",".join(["0.1"] * 300000) + "]}"], "frame_too_large", 1009),
    ],
)
def test_hostile_messages(pod: RunningPod, messages: list, code: str, close: int) -> None:
    expect_error(pod.ws, messages, code, close)


def test_bad_query_parameters(pod: RunningPod) -> None:
    expect_error(pod.ws, [], "invalid_sample_rate", 1007, query="?sample_rate=lots")
    expect_error(pod.ws, [], "unsupported_encoding", 1003, query="?encoding=mulaw")


def test_idle_client_is_closed(pod: RunningPod) -> None:
    started = time.monotonic()
    err = expect_error(pod.ws, [START], "idle_timeout", 1008)
    assert "idle" in err["message"]
    assert time.monotonic() - started < 20


def test_too_fast_and_too_long() -> None:
    with running_pod(max_realtime_factor=1.0, realtime_burst_seconds=1.0, max_session_seconds=30.0) as p:
        frame = np.zeros(8000, "<f4").tobytes()  # 0.5 s each, sent as fast as possible
        expect_error(p.ws, [START] + [frame] * 8, "too_fast", 1008)
    with running_pod(max_session_seconds=1.0, max_realtime_factor=100.0) as p:
        frame = np.zeros(8000, "<f4").tobytes()
        expect_error(p.ws, [START] + [frame] * 4, "session_too_long", 1008)


def test_hostile_clients_do_not_harm_a_live_stream(pod: RunningPod) -> None:
    audio = speech(4.0)
    with connect(pod.ws, open_timeout=10) as good:
        good.send(START)
        assert recv_json(good)["type"] == "ready"
        for i, start in enumerate(range(0, audio.size, 4000)):
            good.send(audio[start : start + 4000].astype("<f4").tobytes())
            if i % 4 == 0:  # interleave hostile connections with the live one
                expect_error(pod.ws, ["{bad json"], "malformed_json", 1007)
                expect_error(pod.ws, [START, np.array([math.nan], "<f4").tobytes()], "invalid_audio", 1007)
        good.send(json.dumps({"type": "end"}))
        messages, code = drain(good)
    assert code == 1000
    assert messages[-1]["type"] == "final"
    assert not [m for m in messages if m["type"] == "error"]
    assert httpx.get(pod.http + "/health").json() == {"status": "ok"}
    assert httpx.get(pod.http + "/ready").status_code == 200
