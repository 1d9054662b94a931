"""`voiceflow serve` / `voiceflow stream`: registered through the CLI dispatcher, and the stream
client run as a real process against a real pod."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from pod_support import ROOT, RunningPod, speech

from tests.stream_client import voiceflow_stream
from voiceflow_cli.main import build_parser

# Every test here talks to a real socket: bound each one so a hang fails instead of stalling CI.
pytestmark = pytest.mark.timeout(240)


def test_commands_are_registered_with_handlers() -> None:
    parser = build_parser()
    args = parser.parse_args(["serve", "--port", "3100", "--model", "/models", "--workers", "2"])
    assert callable(args.handler) and (args.port, args.model_path, args.workers) == (3100, "/models", 2)
    args = parser.parse_args(["stream", "a.wav", "--url", "ws://x:3000/ws/stream", "--fast"])
    assert callable(args.handler) and args.fast and args.file == "a.wav"


def test_inference_pod_cli_imports_only_argparse_at_module_level() -> None:
    code = "import sys, inference_pod.cli; print(any(m in sys.modules for m in ('fastapi', 'uvicorn', 'numpy')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_voiceflow_stream_prints_segments_and_writes_rttm(pod: RunningPod, tmp_path: Path) -> None:
    wav = tmp_path / "talk.wav"
    sf.write(wav, speech(8.0, "dev00.wav"), 16000, subtype="FLOAT")
    rttm = tmp_path / "talk.rttm"
    out = voiceflow_stream(wav, pod.ws, "--speed", "0", "--rttm", str(rttm))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ready: session" in out.stdout and "final (end)" in out.stdout
    lines = rttm.read_text().splitlines()
    assert lines and all(line.startswith("SPEAKER talk 1 ") for line in lines)


def test_voiceflow_stream_reports_a_refused_stream(pod: RunningPod, tmp_path: Path) -> None:
    wav = tmp_path / "talk.wav"
    sf.write(wav, speech(1.0), 16000)
    out = voiceflow_stream(wav, pod.ws + "?sample_rate=5")
    assert out.returncode == 1
    assert "invalid_sample_rate" in out.stdout
