"""End to end with the real core engine: upload real speech, the worker runs voiceflow's Diarizer.

Uses the default wiring (`control_api.engine`: voiceflow.audio.decode_audio_bytes for validation,
voiceflow.pipeline.Diarizer and voiceflow.rttm.segments_to_rttm for the work), nothing injected.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import soundfile as sf
from api_support import ADMIN_PASSWORD, login, wait_for
from fastapi.testclient import TestClient

from control_api.app import build_context, create_app
from control_api.settings import Settings
from voiceflow.bundle import verify_bundle
from voiceflow.embedding import default_model_path
from voiceflow.rttm import parse_rttm

pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.fixture
def speech_clip(shared_data: Path) -> bytes:
    """20 s of a real meeting (AMI excerpt), from ../shared (tests/conftest.py's skip-or-fail policy)."""
    speech = shared_data / "ami-excerpts" / "dev00.wav"
    samples, rate = sf.read(str(speech), frames=20 * sf.info(str(speech)).samplerate)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="FLAC")
    return buf.getvalue()


def test_real_engine_diarizes_an_uploaded_meeting_clip(tmp_path: Path, speech_clip: bytes) -> None:

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
        # Nothing activated: the bundled default diarized it, and each result names that bundle.
        assert first["model"]["bundle_digest"] == verify_bundle(default_model_path()).digest
        assert all(0 <= s["start"] < s["end"] <= 20.01 for s in first["segments"])
        parsed = parse_rttm(first["rttm"])
        assert list(parsed) == ["meeting"] and len(parsed["meeting"]) == len(first["segments"])

        # The engine's decoder rejects a file that only looks like audio by its first bytes.
        fake = b"RIFF\x00\x10\x00\x00WAVE" + b"\x07" * 4000
        refused = client.post("/api/inference/batch", files=[("files", ("x.wav", fake, "audio/wav"))], headers=admin)
        assert refused.status_code == 422 and "x.wav" in refused.json()["detail"]
