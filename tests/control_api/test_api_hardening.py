"""Hostile clients of the Control API (issue 26): bounded decoding, 4xx at the edge, auth before the body."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import soundfile as sf
from api_support import login

from control_api.engine import engine_validate_audio
from control_api.settings import Settings

ClientFor = Callable[..., Any]


def flac(samples: np.ndarray, rate: int, total_samples: int | None = None) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="FLAC")
    data = bytearray(out.getvalue())
    if total_samples is not None:  # rewrite STREAMINFO's 36-bit total_samples: a header that lies
        value = int.from_bytes(data[21:26], "big")
        data[21:26] = ((value & ~((1 << 36) - 1)) | total_samples).to_bytes(5, "big")
    return bytes(data)


def test_upload_bombs_get_4xx_with_the_production_validator(db_settings: Settings, client_for: ClientFor) -> None:
    client = client_for(db_settings, validate_audio=engine_validate_audio)
    admin = login(client)
    lying = flac(np.zeros(16000, dtype=np.float32), 16000, total_samples=(1 << 36) - 1)
    r = client.post("/api/inference/batch", files=[("files", ("a.flac", lying, "audio/flac"))], headers=admin)
    assert r.status_code == 413, r.text
    wide = flac(np.zeros((4096, 8), dtype=np.float32), 655350, total_samples=655350 * 3 * 3600)
    r = client.post("/api/inference/batch", files=[("files", ("b.flac", wide, "audio/flac"))], headers=admin)
    assert r.status_code == 422, r.text
    assert "655350 Hz" in r.json()["detail"]
    r = client.post(
        "/api/inference/batch", files=[("files", ("c.wav", b"RIFF\0\0\0\0WAVEjunk" * 4, "x"))], headers=admin
    )
    assert r.status_code == 422
    assert "object at 0x" not in r.text
    assert not list((db_settings.storage_dir / "staging").iterdir())
