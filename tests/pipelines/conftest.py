"""Fixtures for the pipelines tests: the shared data folder and a tiny trained student."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    return Path(os.environ.get("VOICEFLOW_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: skipped outside CI when missing, a failure in CI (CI=true)."""
    path = shared_data_dir()
    if not (path / "librispeech-train-clean-100").is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"shared data missing at {path} (required in CI)")
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_config(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from pipelines.training.config import load_preset

    config = load_preset("tiny")
    cache = tmp_path_factory.mktemp("teacher-cache")
    return replace(config, cache_dir=str(cache), data=replace(config.data, data_root=str(shared_data)))


@pytest.fixture(scope="session")
def tiny_run(tiny_config, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One uninterrupted tiny training run, shared by the end-to-end and resume tests."""
    from pipelines.training.loop import train

    out = tmp_path_factory.mktemp("tiny-run")
    return train(tiny_config, out, progress=False, log=lambda _m: None)
