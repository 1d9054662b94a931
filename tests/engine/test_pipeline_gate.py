"""The pipeline gate, and that the shipped default is what the recorded dev-set results choose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voiceflow.config import DEFAULT_PIPELINE
from voiceflow.gate import choose_default, gate

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "segmentation-dev-results.json"


def test_a_challenger_must_not_lose_on_any_set() -> None:
    incumbent = {"ami-dev": 0.30, "sim-dev": 0.20}
    assert not gate(incumbent, {"ami-dev": 0.45, "sim-dev": 0.05}, "x").adopted, "a mean win hides a real loss"
    assert gate(incumbent, {"ami-dev": 0.29, "sim-dev": 0.19}, "x").adopted
    assert not gate(incumbent, dict(incumbent), "x").adopted, "a tie is no reason to change"
    assert gate(incumbent, {"ami-dev": 0.305, "sim-dev": 0.10}, "x", margin=0.01).adopted
    with pytest.raises(ValueError):
        gate(incumbent, {"ami-dev": 0.1}, "x")


def test_best_passing_challenger_wins() -> None:
    scores = {"a": {"s": 0.3}, "b": {"s": 0.2}, "c": {"s": 0.1}, "d": {"s": 0.4}}
    winner, decisions = choose_default(scores, "a")
    assert winner == "c"
    assert [d.challenger for d in decisions if not d.adopted] == ["d"]
    assert choose_default({"a": {"s": 0.3}}, "a")[0] == "a"


def test_shipped_default_is_what_the_recorded_dev_results_choose() -> None:
    # docs/segmentation-dev-results.json is `voiceflow evaluate --dev --pipeline all --streaming
    # --baseline --json-out ...` as run for docs/segmentation.md.
    recorded = json.loads(RESULTS.read_text())
    for mode in ("offline", "streaming"):
        scores = {
            system.split(" ")[0]: {name: row["der"] for name, row in sets.items()}
            for system, sets in recorded.items()
            if f" {mode} " in system
        }
        assert set(scores) == {"embedding", "segmentation", "embedding-overlap"}
        assert choose_default(scores, "embedding")[0] == DEFAULT_PIPELINE, mode
