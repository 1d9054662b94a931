"""The pipeline gate: a challenger must win without losing anywhere."""

from __future__ import annotations

import pytest

from pipelines.evaluation.gate import choose_default, pipeline_gate


def test_a_challenger_must_not_lose_on_any_set() -> None:
    incumbent = {"ami-dev": 0.30, "sim-dev": 0.20}
    assert not pipeline_gate(incumbent, {"ami-dev": 0.45, "sim-dev": 0.05}, "x").passed, "a mean win hides a real loss"
    assert pipeline_gate(incumbent, {"ami-dev": 0.29, "sim-dev": 0.19}, "x").passed
    assert not pipeline_gate(incumbent, dict(incumbent), "x").passed, "a tie is no reason to change"
    assert pipeline_gate(incumbent, {"ami-dev": 0.305, "sim-dev": 0.10}, "x", margin=0.01).passed
    with pytest.raises(ValueError):
        pipeline_gate(incumbent, {"ami-dev": 0.1}, "x")


def test_best_passing_challenger_wins() -> None:
    scores = {"a": {"s": 0.3}, "b": {"s": 0.2}, "c": {"s": 0.1}, "d": {"s": 0.4}}
    winner, decisions = choose_default(scores, "a")
    assert winner == "c"
    assert [d.candidate for d in decisions if not d.passed] == ["d"]
    assert choose_default({"a": {"s": 0.3}}, "a")[0] == "a"
