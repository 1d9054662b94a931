"""The shipped (read-only) default.json names an intact model that passed the gate against the model it replaced."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voiceflow.embedding import (
    DEFAULT_MODEL,
    DEFAULT_POINTER,
    EmbeddingModel,
    default_model_path,
    file_sha256,
    packaged_default_model,
)

pytestmark = pytest.mark.skipif(not DEFAULT_POINTER.is_file(), reason="no model promoted: GE2E is the default")


def test_the_pointer_resolves_to_the_promoted_file_not_the_fallback() -> None:
    pointer = json.loads(DEFAULT_POINTER.read_text())
    path = packaged_default_model()
    # tests run on an empty model store (tests/conftest.py): the engine serves the shipped choice
    assert default_model_path() == path != DEFAULT_MODEL and path.name == pointer["model"]
    assert file_sha256(path) == pointer["sha256"]
    assert (DEFAULT_POINTER.parent / pointer["fallback"]) == DEFAULT_MODEL


def test_the_promoted_model_passed_the_suite_gate() -> None:
    """Against the model it replaced, on the dev suite: better pooled, and no stratum significantly
    worse (pipelines.evaluation.gate.suite_gate; its reasons name every stratum's paired interval)."""
    pointer = json.loads(DEFAULT_POINTER.read_text())
    manifest = json.loads((DEFAULT_POINTER.parent / pointer["manifest"]).read_text())
    gate = manifest["gate"]
    assert gate["passed"] is True
    assert manifest["model"]["sha256"] == pointer["sha256"]
    assert manifest["baseline"]["sha256"] not in ("", None, pointer["sha256"])
    ours, theirs = manifest["metrics"]["der"], manifest["baseline"]["der"]
    assert set(ours) == set(theirs) >= {"pooled", "source:ami", "source:sim", "channel:telephone", "speakers:7-8"}
    assert ours["pooled"]["der"] < theirs["pooled"]["der"] + gate["margin"]
    strata = [reason for reason in gate["reasons"] if not reason.startswith("pooled")]
    assert len(strata) == len(ours) - 1 and not any("significantly worse" in reason for reason in strata)


def test_the_promoted_model_serves_with_its_background_and_calibration() -> None:
    model = EmbeddingModel.load()
    assert model.path == default_model_path()
    assert model.background_mean is not None, "streaming would run without the model's own background"
    assert abs(model.merge_threshold_shift) < 0.05
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000 * 4) * 0.05).astype(np.float32)
    ends = np.arange(25600, len(audio) + 1, 3200)
    read = model.read_windows(audio, ends, 25600) if model.streams else model.embed(audio[None, :25600])
    assert np.all(np.isfinite(read)) and np.allclose(np.linalg.norm(read, axis=1), 1.0, atol=1e-4)
