"""Hostile input to the pod (issue 26): 4xx, not 500, and bounded memory."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf
from pod_support import RunningPod, running_pod


@pytest.fixture(scope="module")
def pod() -> Iterator[RunningPod]:
    with running_pod() as p:
        yield p


def flac(samples: np.ndarray, rate: int, total_samples: int | None = None) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="FLAC")
    data = bytearray(out.getvalue())
    if total_samples is not None:  # rewrite STREAMINFO's 36-bit total_samples: a header that lies
        value = int.from_bytes(data[21:26], "big")
        data[21:26] = ((value & ~((1 << 36) - 1)) | total_samples).to_bytes(5, "big")
    return bytes(data)


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
