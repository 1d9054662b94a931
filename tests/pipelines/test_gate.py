"""The promotion gate refuses a worse model, against the model served now (promotion: test_promotion.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.evaluation.gate import gate
from pipelines.evaluation.manifest import build_manifest, manifest_path, write_manifest


def report(ami: float, sim: float) -> dict[str, Any]:
    rows = {
        name: {"der": der, "der_collar_0.25": der / 2, "false_alarm": 0.0, "missed": 0.0, "confusion": der}
        for name, der in (("ami-dev", ami), ("sim-dev", sim))
    }
    return {"der": rows, "mean_der": (ami + sim) / 2}


def test_gate_passes_an_equal_or_better_model() -> None:
    decision = gate(report(0.20, 0.10), report(0.20, 0.12), margin=0.0)
    assert decision.passed and decision.reasons


def test_gate_refuses_a_model_worse_on_one_set_even_if_better_on_average() -> None:
    decision = gate(report(0.25, 0.02), report(0.20, 0.12), margin=0.01)
    assert not decision.passed
    assert any(r.startswith("ami-dev") for r in decision.reasons)


def test_gate_margin_is_absolute_and_can_demand_improvement() -> None:
    assert gate(report(0.205, 0.125), report(0.20, 0.12), margin=0.01).passed
    assert not gate(report(0.20, 0.12), report(0.20, 0.12), margin=-0.005).passed


def test_gate_refuses_a_model_missing_a_dev_set() -> None:
    candidate = report(0.1, 0.1)
    del candidate["der"]["sim-dev"]
    assert not gate(candidate, report(0.2, 0.2)).passed


def test_manifest_records_version_sha_git_and_metrics(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    model.with_suffix(".json").write_text(
        json.dumps({"version": "student-abc", "training": {"config": {"data": {"ami_files": ["trn00"]}}}})
    )
    meta = json.loads(model.with_suffix(".json").read_text())
    manifest = build_manifest(model, evaluation=report(0.1, 0.2), training=meta["training"])
    path = write_manifest(model, manifest)
    assert path == manifest_path(model)
    saved = json.loads(path.read_text())
    assert saved["version"] == "student-abc"
    assert len(saved["model"]["sha256"]) == 64
    assert set(saved["git"]) == {"commit", "dirty"}
    assert saved["metrics"]["mean_der"] == pytest.approx(0.15)
    assert saved["data"]["ami"] == ["ami-excerpts/trn00"] or saved["data"]["ami"] == ["None/trn00"]


def test_register_stores_a_refused_version_and_exits_3(tmp_path: Path) -> None:
    from voiceflow_cli.main import main

    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx bytes")
    model.with_suffix(".json").write_text(json.dumps({"version": "student-x", "training": {"config": {}}}))
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"model": report(0.30, 0.10), "baseline": report(0.20, 0.10), "gate": None}))
    store = tmp_path / "store"
    argv = [
        "register",
        "--model",
        str(model),
        "--metrics",
        str(metrics),
        "--version",
        "v7",
        "--store",
        str(store),
    ]
    assert main([*argv, "--der-margin", "0.05"]) == 3
    saved = json.loads((store / "v7" / "model.manifest.json").read_text())
    assert saved["version"] == "v7" and saved["gate"]["passed"] is False
    assert any("ami-dev" in r for r in saved["gate"]["reasons"])
    # a generous enough margin passes the same numbers
    assert main([*argv, "--der-margin", "0.15"]) == 0
    assert json.loads((store / "v7" / "model.manifest.json").read_text())["gate"]["passed"] is True


def test_the_gate_baseline_is_the_model_served_now(tmp_path: Path) -> None:
    """After a promotion the next candidate must beat the promoted model, not the packaged default."""
    from pipelines.evaluation.command import current_default_model
    from voiceflow.bundle import publish_bundle, write_index
    from voiceflow.embedding import DEFAULT_MODEL, packaged_default_model

    store = tmp_path / "store"
    assert current_default_model(store) == packaged_default_model()  # nothing promoted there
    promoted = tmp_path / "student.onnx"
    promoted.write_bytes(DEFAULT_MODEL.read_bytes())
    write_index(promoted)
    served = publish_bundle(promoted, store).model_path.resolve()
    assert current_default_model(store) == served
    served.write_bytes(b"changed after promotion")  # a bundle that no longer matches is not served
    assert current_default_model(store) == packaged_default_model()


def test_register_gates_against_the_current_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.evaluation.command as command
    import pipelines.evaluation.harness as harness
    from pipelines.evaluation.register import baseline_for

    served = tmp_path / "served.onnx"
    monkeypatch.setattr(command, "current_default_model", lambda store=None: served)
    monkeypatch.setattr(harness, "load_sets_from_spec", lambda spec: {})
    seen: list[Path] = []
    monkeypatch.setattr(harness, "evaluate_model", lambda model, **_: seen.append(Path(model)) or report(0.2, 0.1))
    assert baseline_for(report(0.2, 0.1), None)["mean_der"] == pytest.approx(0.15)
    assert seen == [served]
    baseline_for(report(0.2, 0.1), tmp_path / "named.onnx")
    assert seen[-1] == tmp_path / "named.onnx"


def test_register_scores_the_baseline_on_the_candidates_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.evaluation.command as command
    import pipelines.evaluation.harness as harness
    from pipelines.evaluation.register import baseline_for

    monkeypatch.setattr(command, "current_default_model", lambda store=None: tmp_path / "served.onnx")
    monkeypatch.setattr(harness, "load_sets_from_spec", lambda spec: {"suite": ["items of " + spec["suite"]]})
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(harness, "evaluate_model", lambda model, **kw: calls.append(kw) or report(0.2, 0.1))
    spec = {"suite": "dev", "data_dir": None, "cache": None, "phases": 5}
    baseline_for(dict(report(0.2, 0.1), sets_spec=spec), None)
    assert calls[0]["sets_spec"] == spec and calls[0]["sets"] == {"suite": ["items of dev"]}
