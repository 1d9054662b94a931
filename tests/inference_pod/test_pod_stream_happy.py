"""Protocol happy paths over a real socket: binary and JSON audio, query configuration, resampling,
metrics exposition, /infer, and server `final` == the engine's StreamingSession run directly."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
import pytest
from pod_support import RunningPod, drain, infer_wav, recv_json, speech
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from inference_pod import engine
from inference_pod.metrics import METRIC_NAMES

# Every test here talks to a real socket: bound each one so a hang fails instead of stalling CI.
pytestmark = pytest.mark.timeout(240)


def validator():
    import jsonschema
    from pod_support import ROOT

    schema = json.loads((ROOT / "docs" / "protocol.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def test_binary_stream_s16le(pod: RunningPod) -> None:
    audio = speech(4.0)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    v = validator()
    with connect(pod.ws, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_s16le", "protocol_version": 1}))
        ready = recv_json(ws)
        v.validate(ready)
        assert ready["type"] == "ready" and ready["model_version"] == pod.pod.model.version
        frames = [pcm[i : i + 1600].tobytes() for i in range(0, pcm.size, 1600)]  # 100 ms frames
        for f in frames:
            ws.send(f)
        ws.send(json.dumps({"type": "end"}))
        messages, code = drain(ws)
    for m in messages:
        v.validate(m)
    results = [m for m in messages if m["type"] == "result"]
    assert code == 1000
    assert messages[-1]["type"] == "final" and messages[-1]["reason"] == "end"
    assert results, messages
    seqs = [r["sequence"] for r in results]
    assert seqs == sorted(seqs) and seqs[-1] == len(frames) - 1  # newest binary frame index, 0-based
    assert all(r["latency_ms"] >= 0 for r in results)
    final = messages[-1]["segments"]
    assert final and all(s["final"] for s in final)
    assert all(0 <= s["start"] < s["end"] <= 4.0 + 1e-6 for s in final)


def test_json_chunks_get_one_reply_each(pod: RunningPod) -> None:
    audio = speech(3.0)
    with connect(pod.ws, open_timeout=10) as ws:
        sent = []
        for n, i in enumerate(range(0, audio.size, 8000)):
            seq = 100 + n
            ws.send(json.dumps({"type": "audio_chunk", "data": audio[i : i + 8000].tolist(), "sequence": seq}))
            sent.append(seq)
        ws.send(json.dumps({"type": "end"}))
        messages, code = drain(ws)
    assert code == 1000
    # one result per chunk, then the end's result (what it finalized) naming the last chunk
    assert [m["sequence"] for m in messages if m["type"] == "result"] == [*sent, sent[-1]]
    assert messages[-1]["type"] == "final"


def test_query_configured_48k_float_stream_is_resampled(pod: RunningPod) -> None:
    import soxr

    audio16 = speech(3.0)
    audio48 = soxr.resample(audio16, 16000, 48000).astype("<f4")
    with connect(pod.ws + "?sample_rate=48000&encoding=pcm_f32le", open_timeout=10) as ws:
        for i in range(0, audio48.size, 4800):
            ws.send(audio48[i : i + 4800].tobytes())
        ws.send(json.dumps({"type": "end"}))
        messages, code = drain(ws)
    assert code == 1000
    assert messages[-1]["type"] == "final"
    assert max((s["end"] for s in messages[-1]["segments"]), default=0) <= 3.0 + 0.05


def test_server_final_equals_the_cli_streaming_run(pod: RunningPod) -> None:
    """The pod's `final` for a file == `voiceflow diarize --streaming` on it, whatever the framing."""
    from inference_pod.client import stream_samples
    from voiceflow import STREAM_FEED_SAMPLES as STREAM_CHUNK

    audio = speech(8.0, "dev00.wav")
    # 0.13 s frames, unpaced: frames never line up with the engine's blocks, and late steps merge
    outcome = asyncio.run(stream_samples(audio, pod.ws, speed=0, chunk_seconds=0.13))
    assert outcome.final is not None and not outcome.errors
    model = pod.pod.model.model
    session = engine.new_stream_session(model)
    for i in range(0, audio.size, STREAM_CHUNK):  # what voiceflow.selection.stream_audio does
        session.feed(audio[i : i + STREAM_CHUNK])
    direct = [{"start": s.start, "end": s.end, "speaker": s.speaker, "final": True} for s in session.finish()]
    assert direct
    assert outcome.final == direct


def test_metrics_exposition_parses(pod: RunningPod) -> None:
    from inference_pod.client import stream_samples
    from voiceflow import SAMPLE_CONVERSATION
    from voiceflow.audio import load_audio

    # a stream of its own (the bundled sample, no shared data), so the counters below have work
    sample = load_audio(SAMPLE_CONVERSATION)[: 4 * 16000]
    outcome = asyncio.run(stream_samples(sample, pod.ws, speed=0, chunk_seconds=0.25))
    assert outcome.final is not None and not outcome.errors
    text = httpx.get(pod.http + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in METRIC_NAMES:
        assert name.removesuffix("_total") in families, name
    assert families["inference_latency_seconds"].type == "histogram"
    info = [s for s in families["inference_model_info"].samples if s.value == 1]
    assert info and info[0].labels["version"] == pod.pod.model.version
    # the stream's results are counted ...
    results = [s for s in families["inference_requests"].samples if s.labels.get("endpoint") == "stream"]
    assert results and results[0].value > 0

    # ... and once every connection has closed, the gauges are back to zero
    def gauge(name: str) -> float:
        text = httpx.get(pod.http + "/metrics").text
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        return fams[name].samples[0].value

    deadline = time.monotonic() + 10
    while (gauge("websocket_connections_active") or gauge("inference_streams_active")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gauge("websocket_connections_active") == 0
    assert gauge("inference_streams_active") == 0


def test_infer_wav_json_and_bad_bodies(pod: RunningPod) -> None:
    audio = speech(5.0)
    body = infer_wav(pod, audio, "PCM_16", timeout=60)
    assert body["segments"] and body["latency_ms"] > 0 and abs(body["duration"] - 5.0) < 0.01
    r = httpx.post(pod.http + "/infer", json={"data": audio[:32000].tolist(), "sample_rate": 16000}, timeout=60)
    assert r.status_code == 200, r.text
    for content, ctype, code in [
        (b"definitely not audio", "application/octet-stream", "invalid_audio"),
        (b"{nope", "application/json", "malformed_json"),
        (b'{"data":[1,NaN]}', "application/json", "invalid_audio"),
        (b"", "application/octet-stream", "invalid_audio"),
    ]:
        r = httpx.post(pod.http + "/infer", content=content, headers={"content-type": ctype}, timeout=30)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == code


def test_health_ready_and_page(pod: RunningPod) -> None:
    assert httpx.get(pod.http + "/health").status_code == 200
    ready = httpx.get(pod.http + "/ready").json()
    assert ready["status"] == "ready" and ready["model_version"] and ready["model_sha256"]
    page = httpx.get(pod.http + "/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "WebSocket" in httpx.get(pod.http + "/static/app.js").text
