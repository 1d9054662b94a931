"""Hostile input to the pod (issue 26): 4xx, not 500, and bounded memory."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import jwt
import numpy as np
import pytest
from pod_support import RunningPod, running_pod
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from inference_pod import engine, protocol
from inference_pod.protocol import ProtocolError
from inference_pod.serve import build_server
from inference_pod.settings import Settings
from tests.audio_bombs import flac
from voiceflow_edge import header_timeout, servers


@pytest.fixture(scope="module")
def pod() -> Iterator[RunningPod]:
    with running_pod() as p:
        yield p


def test_infer_refuses_a_flac_whose_header_promises_too_much(pod: RunningPod) -> None:
    bomb = flac(np.zeros(16000, dtype=np.float32), 16000, total_samples=(1 << 36) - 1)
    r = httpx.post(pod.http + "/infer", content=bomb, headers={"Content-Type": "audio/flac"}, timeout=30)
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "frame_too_large"


def test_infer_refuses_an_8_channel_655_khz_flac_with_a_4xx(pod: RunningPod) -> None:
    bomb = flac(np.zeros((4096, 8), dtype=np.float32), 655350, total_samples=655350 * 3 * 3600)
    r = httpx.post(pod.http + "/infer", content=bomb, headers={"Content-Type": "audio/flac"}, timeout=30)
    assert r.status_code == 400, r.text
    assert "655350 Hz" in r.json()["message"]


def test_infer_error_messages_hide_object_reprs(pod: RunningPod) -> None:
    r = httpx.post(pod.http + "/infer", content=b"garbage, not audio" * 8, timeout=30)
    assert r.status_code == 400
    assert "object at 0x" not in r.text


def test_json_samples_beyond_float32_range_are_clipped(pod: RunningPod) -> None:
    r = httpx.post(pod.http + "/infer", json=[1e308, -1e308] + [0.0] * 16000, timeout=60)
    assert r.status_code == 200, r.text
    r = httpx.post(pod.http + "/infer", content=b"[0.0, NaN]", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


# --- tokens: `exp` required, roles mean something ---------------------------------------------------------

KEY = "pod-hardening-key-" + "k" * 32


def pod_token(role: str | None = "operator", exp: bool = True) -> str:
    claims: dict[str, object] = {"sub": "alice", "typ": "access"}
    if role is not None:
        claims["role"] = role
    if exp:
        claims["exp"] = int(time.time()) + 300
    return jwt.encode(claims, KEY, "HS256")


def test_pod_tokens_need_exp_and_a_role_that_allows_the_action() -> None:
    with running_pod(jwt_key=KEY) as p:

        def infer(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.post(p.http + "/infer", json=[0.0] * 16000, headers=headers, timeout=60).status_code

        assert infer(pod_token(exp=False)) == 401
        assert infer(pod_token(role=None)) == 403
        assert infer(pod_token(role="viewer")) == 403
        assert infer(pod_token(role="operator")) == 200
        with connect(p.ws + "?token=" + pod_token(role="viewer"), open_timeout=10) as ws:
            ws.send(json.dumps({"type": "start"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        with pytest.raises(InvalidStatus) as info, connect(p.ws + "?token=" + pod_token(exp=False), open_timeout=10):
            pass
        assert info.value.response.status_code == 401


# --- header timeouts, loopback default, warnings, tokens out of the logs ----------------------------------


def test_a_half_sent_request_is_closed_by_the_header_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(header_timeout, "HEADER_TIMEOUT_S", 0.3)
    with running_pod() as p, socket.create_connection(("127.0.0.1", p.port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sock.settimeout(20)  # a bound on the test, not the assertion: the old server never closed
        assert sock.recv(100) == b""
    with running_pod() as p, socket.create_connection(("127.0.0.1", p.port)) as sock:
        sock.settimeout(20)
        sock.sendall(b"")  # connected, sent nothing at all
        assert sock.recv(100) == b""


def test_defaults_bind_loopback_and_an_open_pod_on_the_network_warns(caplog: pytest.LogCaptureFixture) -> None:
    assert Settings().host == "127.0.0.1"
    assert servers.is_loopback("127.0.0.1") and servers.is_loopback("::1") and servers.is_loopback("localhost")
    assert not servers.is_loopback("0.0.0.0") and not servers.is_loopback("10.0.0.5")
    with caplog.at_level(logging.WARNING, logger="inference_pod.serve"):
        build_server(Settings(host="0.0.0.0"))
    assert "AUTHENTICATION IS OFF" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="inference_pod.serve"):
        build_server(Settings(host="0.0.0.0", jwt_key=KEY))
        build_server(Settings(host="127.0.0.1"))
    assert "AUTHENTICATION IS OFF" not in caplog.text


def test_tokens_in_urls_are_redacted_from_server_logs() -> None:
    jwt_text = pod_token()
    assert servers.redact_tokens(f"/ws/stream?token={jwt_text}&sample_rate=16000") == (
        "/ws/stream?token=[redacted]&sample_rate=16000"
    )
    # uvicorn's access line: (client, method, path with query, http version, status)
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/?token={jwt_text}", "1.1", 200), None,
    )  # fmt: skip
    servers.RedactTokensFilter().filter(record)
    assert jwt_text not in record.getMessage() and "token=[redacted]" in record.getMessage()


def test_pod_refuses_a_network_address_with_a_short_key() -> None:
    with pytest.raises(ValueError, match="shorter than 32"):
        build_server(Settings(host="0.0.0.0", jwt_key="k"))
    build_server(Settings(host="127.0.0.1", jwt_key="k"))  # a laptop may use any key


# --- /infer has capacity of its own ---------------------------------------------------------------------------


def test_long_infer_requests_do_not_starve_live_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    started = threading.Semaphore(0)
    real_diarize = engine.diarize

    def slow_diarize(*args: object) -> object:
        started.release()
        release.wait(60)  # a 40-minute file, as far as the pod can tell
        return real_diarize(*args)

    monkeypatch.setattr(engine, "diarize", slow_diarize)
    with running_pod(workers=2, infer_workers=1, max_infer_requests=2) as p:
        infers = [
            threading.Thread(target=httpx.post, args=(p.http + "/infer",), kwargs={"json": [0.0] * 1600, "timeout": 90})
            for _ in range(2)
        ]
        try:
            for thread in infers:
                thread.start()
            assert started.acquire(timeout=30)  # one is running, the other waits for the infer worker
            # Both admitted before the third is sent (on a loaded machine the second may still be in flight).
            deadline = time.monotonic() + 30
            while p.call(lambda: p.pod.infer_requests) < 2:
                assert time.monotonic() < deadline, "the second /infer was never admitted"
                time.sleep(0.05)
            third = httpx.post(p.http + "/infer", json=[0.0] * 1600, timeout=30)
            assert third.status_code == 503 and third.json()["code"] == "overloaded"
            with connect(p.ws, open_timeout=10) as ws:
                ws.send(json.dumps({"type": "start"}))
                assert json.loads(ws.recv(timeout=10))["type"] == "ready"
                for sequence in range(3):
                    ws.send(json.dumps({"type": "audio_chunk", "data": [0.0] * 8000, "sequence": sequence}))
                    # A bound on the test, not a latency assertion: the old shared pool never answered.
                    message = json.loads(ws.recv(timeout=30))
                    assert message["type"] == "result" and message["sequence"] == sequence
        finally:
            release.set()
            for thread in infers:
                thread.join(90)


# --- numbers in query strings (found by tests/test_fuzz_inputs.py) -------------------------------------------


@pytest.mark.parametrize("text", ["²", "١٦٠٠٠", "9" * 5000])
def test_non_ascii_or_huge_digit_strings_are_protocol_errors(text: str) -> None:
    # str.isdigit() accepts "²" and Arabic-Indic digits, then int() raised ValueError: a 500.
    for field in ("sample_rate", "protocol_version"):
        with pytest.raises(ProtocolError):
            protocol.config_from_query({field: text})
    assert protocol.decimal_int(" 16000 ") == 16000


def test_infer_num_speakers_superscript_is_a_400(pod: RunningPod) -> None:
    r = httpx.post(pod.http + "/infer", params={"num_speakers": "²"}, json=[0.0] * 1600, timeout=60)
    assert r.status_code == 400, r.text


# --- request heads and bodies that never finish -----------------------------------------------------------


def test_an_oversized_request_head_is_refused(pod: RunningPod) -> None:
    with socket.create_connection(("127.0.0.1", pod.port)) as sock:
        sock.settimeout(20)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for _ in range(100):  # 100 KiB of headers, never ending: httptools alone buffers them all
            try:
                sock.sendall(b"X-Pad: " + b"a" * 1016 + b"\r\n")
            except OSError:  # closed on us mid-way: that is the refusal
                break
        answer = sock.recv(200)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer
    # A large body right behind a small head (one read holds both) is not a large head.
    big = httpx.post(pod.http + "/infer", json=[0.0] * 60000, timeout=60)
    assert big.status_code == 200, big.text


def test_a_stalled_infer_body_is_abandoned(pod: RunningPod, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "BODY_IDLE_S", 0.3)
    with socket.create_connection(("127.0.0.1", pod.port)) as sock:
        sock.settimeout(20)  # a bound on the test: the old pod waited for the rest forever
        sock.sendall(
            b"POST /infer HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 100000\r\n\r\nRIFF"
        )
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"connection: close" in answer.lower()
