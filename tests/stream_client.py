"""`voiceflow stream` run as a real client process, shared by the pod tests and the cluster end-to-end test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def voiceflow_stream(wav: Path, url: str, *options: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`voiceflow stream WAV --url URL OPTIONS...`, its output captured; the caller judges the exit code."""
    argv = [sys.executable, "-m", "voiceflow_cli.main", "stream", str(wav), "--url", url, *options]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
