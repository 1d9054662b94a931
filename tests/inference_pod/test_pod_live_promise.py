"""The protocol's promise over the pod's WebSocket: every segment is sent once more when it becomes
final, so the segments sent live with final=true are exactly the closing `final` message's,
whatever the framing (binary s16le/f32le frames of any size, JSON chunks), on real speech."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pod_support import RunningPod, drain, recv_json
from websockets.sync.client import connect

from voiceflow.audio import load_audio

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
DEV00 = ROOT / "tests" / "data" / "dev00.wav"
SAMPLE = ROOT / "voiceflow" / "samples" / "conversation.wav"


def sizes(chunking: str) -> Iterator[int]:
    if chunking == "random":
        rng = np.random.default_rng(3)
        while True:
            yield int(rng.integers(1, 24000))
    while True:
        yield int(float(chunking) * 16000)


def frames(audio: np.ndarray, chunking: str, encoding: str) -> Iterator[str | bytes]:
    i, it = 0, sizes(chunking)
    while i < audio.size:
        part = audio[i : i + next(it)]
        i += part.size
        if encoding == "json":
            yield json.dumps({"type": "audio_chunk", "data": [round(float(x), 6) for x in part]})
        elif encoding == "pcm_s16le":
            yield (np.clip(part, -1, 1) * 32767).astype("<i2").tobytes()
        else:
            yield part.astype("<f4").tobytes()


def live_and_final(pod: RunningPod, audio: np.ndarray, chunking: str, encoding: str) -> tuple[list, list, list]:
    with connect(pod.ws, open_timeout=10, max_size=None) as ws:
        start = {"type": "start", "sample_rate": 16000, "encoding": "pcm_f32le" if encoding == "json" else encoding}
        ws.send(json.dumps(start))
        assert recv_json(ws)["type"] == "ready"
        for frame in frames(audio, chunking, encoding):
            ws.send(frame)
        ws.send(json.dumps({"type": "end"}))
        messages, code = drain(ws)
    assert code == 1000, messages[-3:]
    assert messages[-1]["type"] == "final" and messages[-1]["reason"] == "end"
    results = [m for m in messages if m["type"] == "result"]
    live = [s for m in results for s in m["segments"]]
    return [s for s in live if s["final"]], [s for s in live if not s["final"]], messages[-1]["segments"]


@pytest.mark.parametrize(
    ("path", "chunking", "encoding"),
    [
        (DEV00, "0.1", "pcm_s16le"),
        (DEV00, "1.3", "pcm_f32le"),
        (DEV00, "random", "pcm_f32le"),
        (DEV00, "0.5", "json"),
        (SAMPLE, "0.1", "pcm_f32le"),
        (SAMPLE, "random", "pcm_s16le"),
    ],
    ids=["dev00-0.1s-s16", "dev00-1.3s-f32", "dev00-random-f32", "dev00-0.5s-json", "sample-0.1s", "sample-random"],
)
def test_live_final_segments_are_the_final_message(pod: RunningPod, path: Path, chunking: str, encoding: str) -> None:
    live_final, drafts, final = live_and_final(pod, load_audio(path), chunking, encoding)
    assert len(final) > 5  # real turns, several speakers (the sample: 9 with own pauses merged)
    as_tuple = lambda segs: sorted((s["start"], s["end"], s["speaker"]) for s in segs)  # noqa: E731
    assert as_tuple(live_final) == as_tuple(final)  # each sent final exactly once, none missing
    keys = {(s["speaker"], s["start"]) for s in final}
    assert drafts and {(s["speaker"], s["start"]) for s in drafts} <= keys  # no draft left open


def test_the_end_result_repeats_the_last_sequence(pod: RunningPod) -> None:
    """What `end` finalized comes in one last `result` before `final`, naming the last audio message."""
    audio = load_audio(SAMPLE)[: 16000 * 6]
    with connect(pod.ws, open_timeout=10, max_size=None) as ws:
        for n, frame in enumerate(frames(audio, "0.5", "json")):
            ws.send(json.dumps({**json.loads(frame), "sequence": 10 + n}))
        ws.send(json.dumps({"type": "end"}))
        messages, code = drain(ws)
    assert code == 1000
    results = [m for m in messages if m["type"] == "result"]
    last = results[-1]
    assert [m["sequence"] for m in results[:-1]] == list(range(10, 10 + n + 1))
    assert last["sequence"] == 10 + n and last["segments"] and all(s["final"] for s in last["segments"])
    assert messages[-1]["type"] == "final" and messages.index(last) == len(messages) - 2
