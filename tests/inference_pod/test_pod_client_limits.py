"""A default pod takes what the seed's clients send: JSON frames of 2 s of float text, and
`voiceflow stream --speed 0`, which paces itself to the limits the pod announces in `ready`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from pod_support import ROOT, RunningPod, drain, recv_json, running_pod
from websockets.sync.client import connect

from inference_pod.client import earliest_send_s
from inference_pod.settings import Settings

pytestmark = pytest.mark.timeout(240)
STREAM = [sys.executable, "-m", "voiceflow_cli.main", "stream"]
DEV00 = ROOT / "tests" / "data" / "dev00.wav"  # 30 s of real AMI speech, in the repository


@pytest.fixture(scope="module")
def default_pod() -> Iterator[RunningPod]:
    """The pod as shipped: no limit raised for the test."""
    with running_pod() as p:
        yield p


def real_speech(seconds: float) -> list[float]:
    samples, rate = sf.read(str(DEV00), dtype="float32")
    assert rate == 16000
    return [float(v) for v in samples[: int(seconds * rate)]]


def test_ready_announces_the_limits_the_pod_enforces(default_pod: RunningPod) -> None:
    with connect(default_pod.ws, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_f32le"}))
        ready = recv_json(ws)
    defaults = Settings()
    assert ready["type"] == "ready"
    assert ready["limits"] == defaults.announced_limits()
    assert ready["limits"]["max_realtime_factor"] == defaults.max_realtime_factor


def test_json_frames_of_two_seconds_of_real_speech_as_float_text(default_pod: RunningPod) -> None:
    chunks = [real_speech(6.0)[i * 32000 : (i + 1) * 32000] for i in range(3)]
    frames = [json.dumps({"type": "audio_chunk", "data": c, "sequence": i}) for i, c in enumerate(chunks)]
    assert all(len(f) > 256 * 1024 for f in frames), "each frame is over the old 256 KiB limit"
    with connect(default_pod.ws, open_timeout=10, max_size=None) as ws:
        for frame in frames:
            ws.send(frame)
        ws.send(json.dumps({"type": "end"}))
        received, close_code = drain(ws, timeout=60)
    assert not [m for m in received if m["type"] == "error"], received
    # one result per chunk, then the end's result (what `end` finalized) naming the last chunk
    assert [m["sequence"] for m in received if m["type"] == "result"] == [0, 1, 2, 2]
    final = next(m for m in received if m["type"] == "final")
    assert final["segments"] and final["segments"][-1]["end"] > 5.0
    assert close_code == 1000


def test_the_json_frame_limit_keeps_a_hard_bound(default_pod: RunningPod) -> None:
    limit = Settings().max_text_frame_bytes
    frame = '{"type":"audio_chunk","data":[' + ",".join(["0.1"] * (limit // 4 + 1)) + "]}"
    assert len(frame) > limit
    with connect(default_pod.ws, open_timeout=10, max_size=None) as ws:
        ws.send(frame)
        received, close_code = drain(ws, timeout=30)
    assert [m["code"] for m in received if m["type"] == "error"] == ["frame_too_large"]
    assert close_code == 1009


def test_the_pace_never_exceeds_the_announced_bound() -> None:
    limits = {"max_realtime_factor": 4.0, "realtime_burst_seconds": 10.0}
    for end in [0.1 * k for k in range(1, 600)]:
        at = earliest_send_s(end - 0.1, end, 0.0, limits)
        assert end <= 10.0 + 4.0 * at, end  # what the server's too_fast check allows
    assert earliest_send_s(0.0, 0.1, 0.0, limits) == 0.0  # the burst goes out at once
    assert earliest_send_s(5.0, 5.1, 1.0, limits) == 5.0  # a real-time client keeps its own pace


def test_stream_speed_0_is_accepted_by_a_default_pod(default_pod: RunningPod, tmp_path: Path) -> None:
    audio = tmp_path / "dev00.wav"
    sf.write(str(audio), real_speech(30.0), 16000)  # 30 s: three times the burst a default pod allows
    rttm = tmp_path / "out.rttm"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [*STREAM, str(audio), "--speed", "0", "--url", default_pod.ws, "--rttm", str(rttm)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "too_fast" not in proc.stdout + proc.stderr
    assert rttm.read_text().count("SPEAKER") >= 2
