"""The pipeline gate: a challenger must win without losing anywhere."""

from __future__ import annotations

import pytest

from voiceflow.gate import choose_default, gate


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
