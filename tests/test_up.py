"""`voiceflow up`: the embedded platform starts, streams the sample through the pod, and stops cleanly."""

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from voiceflow.cli.up import plan_services, seed_active_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_plan_is_pod_plus_api_on_the_active_model_folder(tmp_path: Path) -> None:
    args = argparse.Namespace(host="127.0.0.1", pod_port=3001, api_port=8001)
    pod, api = plan_services(args, tmp_path / "active")
    assert pod.argv[3:5] == ["serve", "--host"] and str(tmp_path / "active") in pod.argv
    assert api.argv[3] == "api" and api.ready_url.endswith(":8001/health")


def test_seed_only_fills_an_empty_folder(tmp_path: Path) -> None:
    active = tmp_path / "active"
    seed_active_model(active)
    assert (active / "model.onnx").stat().st_size > 1_000_000
    (active / "model.onnx").write_bytes(b"activated")
    seed_active_model(active)
    assert (active / "model.onnx").read_bytes() == b"activated"


@pytest.mark.parametrize("pipeline", [None, "segmentation"])
def test_up_demo_end_to_end(tmp_path: Path, pipeline: str | None) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voiceflow.cli.main",
            "up",
            "--state-dir",
            str(tmp_path / "state"),
            "--pod-port",
            str(free_port()),
            "--api-port",
            str(free_port()),
            "--demo",
            "--exit-after-demo",
            *(["--pipeline", pipeline] if pipeline else []),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "voiceflow up: ready" in result.stdout
    assert "SPEAKER_" in result.stdout
    assert (tmp_path / "state" / "control_api.db").is_file()
    password = (tmp_path / "state" / "admin_password").read_text().strip()
    assert len(password) >= 20 and (tmp_path / "state" / "admin_password").stat().st_mode & 0o077 == 0
