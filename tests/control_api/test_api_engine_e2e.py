"""End to end with the real core engine: upload real speech, the worker runs voiceflow's Diarizer.

Uses the default wiring (`control_api.engine`: voiceflow.audio.decode_audio_bytes for validation,
voiceflow.pipeline.Diarizer and voiceflow.rttm.segments_to_rttm for the work), nothing injected.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import soundfile as sf
from api_support import ADMIN_PASSWORD, REPO, login, wait_for

from control_api.app import build_context, create_app
from control_api.settings import Settings

pytestmark = [pytest.mark.shared, pytest.mark.slow]
SPEECH = REPO.parent / "shared" / "data" / "ami-excerpts" / "dev00.wav"


@pytest.fixture
def speech_clip() -> bytes:
    if not SPEECH.exists():
        message = f"{SPEECH} is missing"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("voiceflow.pipeline")
    samples, rate = sf.read(str(SPEECH), frames=20 * sf.info(str(SPEECH)).samplerate)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="FLAC")
    return buf.getvalue()


def test_real_engine_diarizes_an_uploaded_meeting_clip(tmp_path: Path, speech_clip: bytes) -> None:
    from fastapi.testclient import TestClient

    from voiceflow.rttm import parse_rttm

    # build_context without diarize/validate_audio: the production wiring to the engine.
    # Embedded defaults (SQLite): the engine is what is under test here; the databases are elsewhere.
    settings = Settings(state_dir=tmp_path, admin_password=ADMIN_PASSWORD, embedded_workers=1, poll_interval_s=0.1)
    with TestClient(create_app(context=build_context(settings))) as client:
        admin = login(client)
        files = [
            ("files", ("meeting.flac", speech_clip, "audio/flac")),
            ("files", ("meeting-copy.wav", speech_clip, "audio/wav")),  # FLAC by content, whatever the name
        ]
        submitted = client.post("/api/inference/batch", files=files, headers=admin)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]
        job = wait_for(
            lambda: (
                (body := client.get(f"/api/inference/batch/{job_id}", headers=admin).json())["progress"] == 1 and body
            ),
            timeout_s=180,
            interval_s=0.5,
        )
        assert job["state"] == "completed", job
        first, second = job["files"]
        assert first["segments"] == second["segments"] and len(first["segments"]) >= 2
        assert all(0 <= s["start"] < s["end"] <= 20.01 for s in first["segments"])
        parsed = parse_rttm(first["rttm"])
        assert list(parsed) == ["meeting"] and len(parsed["meeting"]) == len(first["segments"])

        # The engine's decoder rejects a file that only looks like audio by its first bytes.
        fake = b"RIFF\x00\x10\x00\x00WAVE" + b"\x07" * 4000
        refused = client.post("/api/inference/batch", files=[("files", ("x.wav", fake, "audio/wav"))], headers=admin)
        assert refused.status_code == 422 and "x.wav" in refused.json()["detail"]
