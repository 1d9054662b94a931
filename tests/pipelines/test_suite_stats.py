"""Suite statistics, cross-validation folds, system specs and the stratum-aware gate (issue 22)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipelines.evaluation.gate import gate, suite_gate
from pipelines.evaluation.suite.folds import assign_folds, cross_validate, tuning_set
from pipelines.evaluation.suite.report import summarise
from pipelines.evaluation.suite.stats import (
    bootstrap_ratio,
    count_accuracy,
    paired_bootstrap_difference,
    pooled_ratio,
)
from pipelines.evaluation.suite.systems import parse_system
from voiceflow.config import ConfigError


def test_bootstrap_interval_contains_the_point_and_narrows_with_more_recordings() -> None:
    rng = np.random.default_rng(0)
    totals = rng.uniform(20, 120, size=10)
    errors = totals * rng.uniform(0.05, 0.4, size=10)
    small = bootstrap_ratio(errors, totals)
    assert small.point == pytest.approx(errors.sum() / totals.sum())
    assert small.low <= small.point <= small.high and small.low < small.high
    large = bootstrap_ratio(np.tile(errors, 8), np.tile(totals, 8))
    assert large.point == pytest.approx(small.point)
    assert large.high - large.low < 0.6 * (small.high - small.low)
    assert bootstrap_ratio(errors, totals) == small  # fixed seed: the same interval every run


def test_one_recording_has_no_spread_and_zero_speech_is_zero() -> None:
    one = bootstrap_ratio([3.0], [10.0])
    assert one.point == one.low == one.high == pytest.approx(0.3)
    assert pooled_ratio([1.0], [0.0]) == 0.0


def test_paired_difference_sees_a_consistent_loss_the_unpaired_intervals_hide() -> None:
    rng = np.random.default_rng(1)
    totals = rng.uniform(20, 120, size=30)
    base = totals * rng.uniform(0.05, 0.6, size=30)  # recordings differ a lot in difficulty
    cand = base + 0.02 * totals  # the candidate is 2 points worse on every one
    a, b = bootstrap_ratio(cand, totals), bootstrap_ratio(base, totals)
    assert a.low < b.high  # the two intervals overlap
    diff = paired_bootstrap_difference(cand, base, totals)
    assert diff.point == pytest.approx(0.02) and diff.low > 0.0


def test_count_accuracy_exact_and_within_one() -> None:
    acc = count_accuracy([1, 2, 4, 6], [1, 3, 4, 8])
    assert acc["exact"] == 0.5 and acc["within_1"] == 0.75 and acc["recordings"] == 4


def test_folds_are_balanced_and_cover_every_group() -> None:
    groups = {"ami": [f"a{i}" for i in range(12)], "sim/2": [f"s{i}" for i in range(18)]}
    folds = assign_folds(groups, 4, seed=3)
    assert set(folds) == set(groups["ami"]) | set(groups["sim/2"])
    sizes = np.bincount(list(folds.values()))
    assert sizes.max() - sizes.min() <= 1
    assert sorted(np.bincount([folds[u] for u in groups["ami"]])) == [3, 3, 3, 3]
    assert assign_folds(groups, 4, seed=3) == folds


def test_cross_validation_never_tunes_on_the_fold_it_reports() -> None:
    folds = assign_folds({"g": [f"r{i}" for i in range(12)]}, 4)
    seen: list[tuple[float, list[str]]] = []
    # a loss that would pick a different threshold for each recording if it could see it
    best_for = {u: 0.1 * (i % 4) for i, u in enumerate(sorted(folds))}

    def loss(threshold: float, uris: list[str]) -> float:
        seen.append((threshold, uris))
        return sum(abs(best_for[u] - threshold) for u in uris)

    chosen = cross_validate(folds, [0.0, 0.1, 0.2, 0.3], loss)
    assert set(chosen) == {0, 1, 2, 3}
    for fold in chosen:
        held_out = {u for u, f in folds.items() if f == fold}
        assert held_out.isdisjoint(tuning_set(folds, fold))
    for _, uris in seen:  # every call saw exactly one fold's complement, never a held-out recording with it
        missing = set(folds) - set(uris)
        assert len({folds[u] for u in missing}) == 1 and len(missing) == 3


def rows(errors: dict[str, float], tags: dict[str, list[str]], total: float = 100.0) -> list[dict[str, Any]]:
    return [{"uri": u, "recording": u, "tags": tags[u], "errors": e, "total": total} for u, e in errors.items()]


def test_gate_refuses_a_model_better_pooled_but_worse_on_one_stratum() -> None:
    uris = [f"r{i:02d}" for i in range(40)]
    tags = {u: ["speakers:2" if i < 30 else "channel:telephone"] for i, u in enumerate(uris)}
    rng = np.random.default_rng(0)
    base = {u: float(rng.uniform(10, 40)) for u in uris}
    # much better on the 30 two-speaker recordings, 6 points worse on each telephone one
    cand = {u: base[u] - 8.0 if i < 30 else base[u] + 6.0 for i, u in enumerate(uris)}
    decision = suite_gate(rows(cand, tags), rows(base, tags))
    assert not decision.passed
    assert any(r.startswith("channel:telephone") and "significantly worse" in r for r in decision.reasons)
    # the same gains without the telephone loss pass
    fair = {u: base[u] - 8.0 if i < 30 else base[u] + (1.0 if i % 2 else -1.0) for i, u in enumerate(uris)}
    assert suite_gate(rows(fair, tags), rows(base, tags)).passed


def test_gate_refuses_a_model_no_better_pooled_and_other_recordings() -> None:
    tags = {"a": ["x"], "b": ["x"]}
    same = rows({"a": 10.0, "b": 20.0}, tags)
    assert not suite_gate(same, same).passed  # better pooled is required, equal is not better
    assert not suite_gate(rows({"a": 1.0}, {"a": ["x"]}), same).passed


def test_gate_sums_the_phase_copies_of_a_recording() -> None:
    base = [
        {"uri": f"m@{p}", "recording": "m", "tags": ["source:ami"], "errors": 30.0, "total": 100.0} for p in range(3)
    ]
    cand = [dict(r, errors=e) for r, e in zip(base, (20.0, 45.0, 20.0), strict=True)]  # one phase unlucky
    decision = suite_gate(cand, base)
    assert decision.passed  # 85/300 < 90/300: the pooled phases decide, not the unlucky one


def test_gate_dispatches_to_the_suite_rule_for_suite_reports() -> None:
    tags = {f"r{i}": ["s"] for i in range(5)}
    base = {"der": {}, "mean_der": 0.2, "suite": {"rows": rows({u: 20.0 for u in tags}, tags)}}
    cand = {"der": {}, "mean_der": 0.3, "suite": {"rows": rows({u: 30.0 for u in tags}, tags)}}
    assert not gate(cand, base).passed
    assert gate(base, cand).passed


def test_summary_per_stratum_from_per_recording_counts() -> None:
    def row(uri: str, rec: str, tags: list[str], errors: float, hyp: int) -> dict[str, Any]:
        counts = {"errors": errors, "total": 100.0, "false_alarm": errors, "missed": 0.0, "confusion": 0.0}
        return {
            "uri": uri,
            "recording": rec,
            "tags": tags,
            "der": counts,
            "der_collar_0.25": counts,
            "jer": {"errors": errors, "total": 100.0},
            "ref_speakers": 2,
            "hyp_speakers": hyp,
        }

    summary = summarise([row("a", "a", ["t:1"], 10, 2), row("b", "b", ["t:2"], 30, 3), row("c", "c", ["t:2"], 50, 5)])
    assert summary["pooled"]["recordings"] == 3 and summary["pooled"]["der"]["point"] == pytest.approx(0.3)
    assert summary["t:2"]["der"]["point"] == pytest.approx(0.4)
    assert summary["t:2"]["count_exact"] == 0.0 and summary["t:2"]["count_within_1"] == 0.5
    assert next(iter(summary)) == "pooled"


def test_system_specs_override_the_engine_config_and_refuse_unknown_keys() -> None:
    spec = parse_system("tight=offline.clustering.threshold=0.7,offline.min_turn_seconds=0")
    config = spec.engine_config()
    assert config.offline.clustering.threshold == 0.7 and config.offline.min_turn_seconds == 0.0
    assert parse_system("default").kind == "engine" and parse_system("naive-tuned").kind == "naive-tuned"
    assert parse_system("m=model=/x.onnx").model == "/x.onnx"
    with pytest.raises(ConfigError):
        parse_system("x=offline.clustering.no_such_key=1")
    with pytest.raises(ConfigError):
        parse_system("x=offline.clustering.threshold=high")
    with pytest.raises(ValueError):
        parse_system("not-a-builtin")


def test_pooled_loss_pools_every_item_of_each_recording() -> None:
    from types import SimpleNamespace

    from pipelines.evaluation.suite.folds import cross_validate, pooled_loss

    items = [
        SimpleNamespace(uri="a@0", recording="a", fold=0),
        SimpleNamespace(uri="a@1", recording="a", fold=0),  # a phase copy of the same recording
        SimpleNamespace(uri="b", recording="b", fold=1),
        SimpleNamespace(uri="c", recording="c", fold=1),
    ]
    errors = {"lo": {"a@0": 1.0, "a@1": 3.0, "b": 2.0, "c": 0.0}, "hi": {"a@0": 4.0, "a@1": 4.0, "b": 1.0, "c": 0.0}}

    def counts(name: str, uri: str) -> tuple[float, float]:
        return errors[name][uri], 10.0

    fold_of, loss = pooled_loss(items, counts)
    assert fold_of == {"a": 0, "b": 1, "c": 1}
    assert loss("lo", ["a"]) == pytest.approx(4.0 / 20.0)  # both copies pooled, not averaged per item
    assert loss("hi", ["b", "c"]) == pytest.approx(1.0 / 20.0)
    # fold 0 is chosen on b and c (hi wins there), fold 1 on a (lo wins there)
    assert cross_validate(fold_of, ["lo", "hi"], loss) == {0: "hi", 1: "lo"}
