"""Start a real inference pod (`python -m inference_pod`) on a free loopback port, for benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_pod(extra_env: dict[str, str], ready_timeout: float = 120.0) -> tuple[subprocess.Popen[bytes], str]:
    """(process, WebSocket URL) once `/ready` answers 200; the process is killed if it never does."""
    port = free_port()
    env = {
        **os.environ,
        "VOICEFLOW_HOST": "127.0.0.1",
        "VOICEFLOW_PORT": str(port),
        "VOICEFLOW_LOG_LEVEL": "warning",
        **extra_env,
    }
    proc = subprocess.Popen([sys.executable, "-m", "inference_pod"], cwd=ROOT, env=env)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                if r.status == 200:
                    return proc, f"ws://127.0.0.1:{port}/ws/stream"
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("pod did not become ready")


def segmentation_model_file(explicit: str | None = None) -> str | None:
    """The segmentation model benchmarks use: `explicit`, else VOICEFLOW_SEGMENTATION_MODEL_PATH, else
    the bundled one, else (until one is bundled) the newest run's export; None when there is none."""
    explicit = explicit or os.environ.get("VOICEFLOW_SEGMENTATION_MODEL_PATH") or None
    if explicit:
        return explicit
    for candidate in (
        ROOT / "voiceflow" / "models" / "segmentation.onnx",
        ROOT / "runs" / "seg-smoke" / "segmentation.onnx",
        ROOT / "runs" / "seg-untrained" / "segmentation.onnx",
    ):
        if candidate.is_file():
            return str(candidate)
    return None
