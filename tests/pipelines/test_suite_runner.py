"""The suite's runner end to end on a tiny suite: systems scored per recording, cached, the naive
threshold cross-validated, and a model report the stratum gate reads (issue 22)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.evaluation.gate import gate
from pipelines.evaluation.suite.cache import load_suite
from pipelines.evaluation.suite.command import model_report
from pipelines.evaluation.suite.report import summarise
from pipelines.evaluation.suite.runner import OFFLINE, Context, EvalItem, build_items, run_system
from pipelines.evaluation.suite.systems import BUILTIN, parse_system
from tests.pipelines.suite_support import tiny_suite

TINY = tiny_suite("tiny-run", ("noise", "telephone"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("suite-run")


@pytest.fixture(scope="module")
def items(workspace: Path) -> list[EvalItem]:
    from pipelines.evaluation.devsets import load_ami_split
    from tests.conftest import require_shared

    data = require_shared()
    recordings, _ = load_suite(TINY, data, workspace)
    return build_items(recordings, load_ami_split("development", data), folds=2, ami_phases=2)


def test_items_carry_strata_folds_and_phase_copies(items: list[EvalItem]) -> None:
    assert len(items) == 4 + 2 * 2
    ami = [it for it in items if "source:ami" in it.tags]
    assert {it.recording for it in ami} == {"ami-dev00", "ami-dev01"}
    assert len({it.uri for it in items}) == len(items)
    for it in ami:  # a recording's phase copies share its fold
        assert {o.fold for o in ami if o.recording == it.recording} == {it.fold}
    assert {it.fold for it in items} == {0, 1}


def test_systems_are_scored_per_recording_and_cached(items: list[EvalItem], workspace: Path) -> None:
    ctx = Context(workspace / "runs", log=lambda _: None)
    rows = run_system(BUILTIN["default"], items, OFFLINE, ctx)
    assert [r["uri"] for r in rows] == [it.uri for it in items]
    for row in rows:
        assert row["der"]["total"] > 0 and row["der"]["errors"] >= 0
        assert row["der_collar_0.25"]["errors"] <= row["der"]["errors"] + 1e-9
        assert row["jer"]["total"] == row["ref_speakers"]
    hyps = list((workspace / "runs" / "hyps").rglob("*.json"))
    assert len(hyps) == len(items)
    assert run_system(BUILTIN["default"], items, OFFLINE, ctx) == rows  # read back from the cache
    # an override is another system: another cache entry, same recordings
    tight = run_system(parse_system("tight=offline.clustering.threshold=0.5"), items, OFFLINE, ctx)
    assert len(list((workspace / "runs" / "hyps").rglob("*.json"))) == 2 * len(items)
    assert [r["uri"] for r in tight] == [r["uri"] for r in rows]
    summary = summarise(rows)
    assert summary["pooled"]["recordings"] == 6 and "channel:telephone" in summary


def test_naive_threshold_is_chosen_on_the_other_fold(items: list[EvalItem], workspace: Path) -> None:
    ctx = Context(workspace / "runs", log=lambda _: None)
    tuned = run_system(BUILTIN["naive-tuned"], items, OFFLINE, ctx)
    by_fold = {r["fold"]: r["threshold"] for r in tuned}
    assert all(r["threshold"] == by_fold[r["fold"]] for r in tuned)
    oracle = run_system(BUILTIN["naive-oracle"], items, OFFLINE, ctx)
    assert all(r["hyp_speakers"] <= r["ref_speakers"] for r in oracle)


def test_a_model_report_feeds_the_stratum_gate(items: list[EvalItem], workspace: Path) -> None:
    from voiceflow.embedding import default_model_path

    spec = {"suite": "tiny-run", "data_dir": None, "cache": str(workspace)}
    report = model_report(default_model_path(), items, spec)
    assert report["mean_der"] == report["der"]["pooled"]["der"]
    assert {r["recording"] for r in report["suite"]["rows"]} == {it.recording for it in items}
    decision = gate(report, report)
    assert not decision.passed  # the same model is not better pooled
    assert decision.reasons[0].startswith("pooled")
