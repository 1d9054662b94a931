"""Shared fixtures: repository paths, the ../shared data policy, small audio."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "tests" / "data"
SHARED_DATA = Path(os.environ.get("VOICEFLOW_SHARED_DATA", ROOT.parent / "shared" / "data"))
_MODEL_STORE: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    """The engine serves the packaged default in tests, never a model a developer promoted into
    their own store: an empty store of the session's own (child processes inherit it)."""
    store = Path(tempfile.mkdtemp(prefix="voiceflow-test-store-"))
    _MODEL_STORE.append(store)
    os.environ["VOICEFLOW_MODEL_STORE"] = str(store)
    os.environ.pop("VOICEFLOW_IGNORE_MODEL_STORE", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _MODEL_STORE:
        shutil.rmtree(_MODEL_STORE.pop(), ignore_errors=True)


def require_shared() -> Path:
    """../shared/data or a skip; in CI (CI=true) its absence is a failure, not a skip."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the shared data directory {SHARED_DATA} is missing")
    pytest.skip(f"{SHARED_DATA} not present")


@pytest.fixture
def shared_data() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def embedding_model():  # type: ignore[no-untyped-def]
    from voiceflow.embedding import EmbeddingModel

    return EmbeddingModel.load()


@pytest.fixture
def tone() -> np.ndarray:
    t = np.arange(16000, dtype=np.float32) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
