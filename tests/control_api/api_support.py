"""Helpers shared by the Control API tests and by the API/worker processes they start.

Importable as `api_support` (this folder goes on PYTHONPATH of child processes), so a uvicorn process
can be told `VOICEFLOW_DIARIZE_FN=api_support:soundfile_diarize`.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from sqlalchemy.orm import Session, sessionmaker

from control_api.db import make_engine, make_sessionmaker, migrate
from control_api.engine import FileResult
from control_api.settings import Settings
from tests.polling import polls

ADMIN_PASSWORD = "admin-password-1"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def wav_bytes(seconds: float = 1.0, sample_rate: int = 16000, fmt: str = "WAV", freq: float = 220.0) -> bytes:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    samples = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format=fmt, subtype="PCM_16" if fmt != "OGG" else "VORBIS")
    return buf.getvalue()


def soundfile_validate(data: bytes) -> float:
    """A real decoder-based validator (the engine's decode_audio_bytes does the same, and resamples)."""
    try:
        info = sf.info(io.BytesIO(data))
        samples, _ = sf.read(io.BytesIO(data), dtype="float32")
    except Exception as exc:  # libsndfile raises its own error types
        raise ValueError(str(exc)) from exc
    return len(samples) / info.samplerate


def soundfile_diarize(path: Path, file_id: str) -> FileResult:
    """Deterministic stand-in for the engine: decodes the file for real, then splits it in two speakers."""
    try:
        samples, rate = sf.read(str(path), dtype="float32")
    except Exception as exc:
        raise ValueError(f"cannot decode {path.name}: {exc}") from exc
    duration = len(samples) / rate
    half = round(duration / 2, 3)
    segments = [
        {"start": 0.0, "end": half, "speaker": "spk0"},
        {"start": half, "end": round(duration, 3), "speaker": "spk1"},
    ]
    rttm = "".join(
        f"SPEAKER {file_id} 1 {s['start']:.3f} {s['end'] - s['start']:.3f} <NA> <NA> {s['speaker']} <NA> <NA>\n"
        for s in segments
    )
    _log_processing(path)
    delay = float(os.environ.get("API_TEST_DIARIZE_DELAY_S", "0"))
    if delay:
        time.sleep(delay)
    return FileResult(segments, rttm)


def _log_processing(path: Path) -> None:
    # Each call appends one line (O_APPEND writes of a short line are atomic), so a test can count
    # how many times each file was processed across worker processes.
    log = os.environ.get("API_TEST_PROCESS_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} {path.name}\n")


# A trainer/exporter stand-in for the registry's command templates: a real command with real files.
FAKE_PIPELINE = """
import hashlib, json, pathlib, sys
mode = sys.argv[1]
if mode == "train":
    config = json.loads(pathlib.Path(sys.argv[2]).read_text())
    if config.get("fail") or config.get("name") == "diverges":  # "name" passes the API's config check
        sys.exit("training diverged: loss is NaN")
    out = pathlib.Path(sys.argv[3])
    (out / "checkpoint.pt").write_bytes(b"weights:" + json.dumps(config, sort_keys=True).encode())
    (out / "metrics.json").write_text(json.dumps({"train_loss": 0.12, "epochs": config.get("epochs", 1)}))
elif mode == "evaluate":
    onnx, out = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    report = {"version": "x", "der": {"collar0": 0.21, "collar025": 0.12}, "speed": {"ms_per_window_b32": 1.5}}
    out.write_text(json.dumps({"model": report, "gate": {"passed": b"refuse" not in onnx.read_bytes()}}))
    if b"refuse" in onnx.read_bytes():
        sys.exit("gate REFUSED: DER 0.21 is worse than the baseline's 0.15 + margin")
else:
    ckpt, onnx = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    onnx.write_bytes(b"onnx:" + ckpt.read_bytes())
    onnx.with_suffix(".json").write_text(json.dumps({"source": str(ckpt), "opset": 17, "quantized": False}))
    (onnx.parent / "metrics.json").write_text(json.dumps({"der": 0.081, "rtf": 0.02}))
"""


def fake_evaluate_command(directory: Path) -> str:
    script = directory / "fake_pipeline.py"
    script.write_text(FAKE_PIPELINE)
    return f"{{python}} {script} evaluate {{model}} {{json_out}}"


def fake_pipeline_script(directory: Path) -> tuple[str, str]:
    script = directory / "fake_pipeline.py"
    script.write_text(FAKE_PIPELINE)
    return (
        f"{{python}} {script} train {{config}} {{output_dir}}",
        f"{{python}} {script} export {{checkpoint}} {{output}}",
    )


def factory_for(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the settings' database, migrated to the latest revision."""
    engine = make_engine(settings)
    migrate(engine)
    return make_sessionmaker(engine)


def with_(settings: Settings, **changes: Any) -> Settings:
    return Settings(**{**settings.__dict__, **changes})


def login(client: Any, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wait_for(predicate: Any, timeout_s: float = 20.0, interval_s: float = 0.05) -> Any:
    for _ in polls(timeout_s, f"condition not met within {timeout_s} s"):
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
