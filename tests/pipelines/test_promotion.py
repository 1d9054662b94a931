"""`evaluate --promote` publishes into the user's model store, never into the installed package."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipelines.evaluation.gate import gate
from pipelines.evaluation.manifest import build_manifest, manifest_path, promotable_bundle, promote, write_manifest
from voiceflow.bundle import BundleError, part_path, write_index
from voiceflow.embedding import DEFAULT_MODEL, MODELS_DIR, EmbeddingModel, default_model_path, packaged_default_model
from voiceflow.model_store import IGNORE_ENV, STORE_ENV, promoted_bundle


def report(ami: float, sim: float) -> dict[str, Any]:
    rows = {name: {"der": der} for name, der in (("ami-dev", ami), ("sim-dev", sim))}
    return {"der": rows, "mean_der": (ami + sim) / 2}


def candidate(folder: Path, seal: bool = True) -> Path:
    """A trained model's export: a real ONNX bundle (the packaged GE2E's parts) outside the package."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "cand.onnx"
    for role in ("model", "metadata", "background", "plda"):
        shutil.copyfile(part_path(DEFAULT_MODEL, role), part_path(model, role))
    if seal:
        write_index(model)
    return model


def passed_manifest(model: Path) -> dict[str, Any]:
    return build_manifest(model, evaluation=report(0.1, 0.1), gate=gate(report(0.1, 0.1), report(0.2, 0.2)).to_dict())


def package_snapshot() -> dict[str, tuple[int, int]]:
    """Every file of the installed models folder (and the folder itself): size and mtime."""
    entries = {".": (0, MODELS_DIR.stat().st_mtime_ns)}
    for entry in os.scandir(MODELS_DIR):
        stat = entry.stat(follow_symlinks=False)
        entries[entry.name] = (stat.st_size, stat.st_mtime_ns)
    return entries


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The configured store, as a user's would be (the engine reads it through the environment)."""
    path = tmp_path / "store"
    monkeypatch.setenv(STORE_ENV, str(path))
    monkeypatch.delenv(IGNORE_ENV, raising=False)
    return path


def test_promotion_publishes_into_the_store_and_the_engine_then_serves_it(tmp_path: Path, store: Path) -> None:
    before = package_snapshot()
    model = candidate(tmp_path / "export")
    manifest = passed_manifest(model)
    write_manifest(model, manifest)  # what evaluate does before promoting: beside, not in the seal
    promoted = promote(model, manifest, store)

    assert package_snapshot() == before  # nothing written into the installed package
    served = promoted_bundle(store)
    assert served is not None and served.digest == promoted.digest
    assert served.model_path.parent.parent == (store / "bundles").resolve()
    # the whole bundle moved, and it carries the gate's record
    assert {"model", "metadata", "background", "plda", "manifest"} == set(served.roles)
    record = json.loads(served.parts["manifest"].path.read_text())
    assert record["gate"]["passed"] is True and record["model"]["file"] == "model.onnx"
    # the engine resolves the promoted bundle when no model is named, and loads it whole
    assert default_model_path() == served.model_path
    loaded = EmbeddingModel.load()
    assert loaded.bundle_digest == promoted.digest and loaded.background_mean is not None


def test_promotion_refuses_a_gate_failure(tmp_path: Path, store: Path) -> None:
    model = candidate(tmp_path / "export")
    decision = gate(report(0.3, 0.3), report(0.2, 0.2))
    refused = build_manifest(model, evaluation=report(0.3, 0.3), gate=decision.to_dict())
    with pytest.raises(ValueError, match="refusing to promote"):
        promote(model, refused, store)
    assert not store.exists() and default_model_path() == packaged_default_model()


def test_promotion_refuses_a_bundle_that_is_not_intact(tmp_path: Path, store: Path) -> None:
    bare = candidate(tmp_path / "bare", seal=False)
    with pytest.raises(BundleError, match=r"not a sealed bundle.*voiceflow bundle seal"):
        promote(bare, passed_manifest(bare), store)
    corrupt = candidate(tmp_path / "corrupt")
    manifest = passed_manifest(corrupt)
    part_path(corrupt, "background").write_bytes(b"changed after it was sealed")
    with pytest.raises(BundleError, match="corrupt"):
        promote(corrupt, manifest, store)
    missing = candidate(tmp_path / "missing")
    part_path(missing, "background").unlink()
    with pytest.raises(BundleError, match="missing"):
        promote(missing, passed_manifest(missing), store)
    assert not (store / "current").exists()


def test_promotion_refuses_a_store_inside_the_installed_package(tmp_path: Path) -> None:
    before = package_snapshot()
    model = candidate(tmp_path / "export")
    for inside in (MODELS_DIR, MODELS_DIR.parent):
        with pytest.raises(ValueError, match="inside the installed package"):
            promote(model, passed_manifest(model), inside)
    assert package_snapshot() == before


def test_a_sealed_manifest_from_an_earlier_evaluation_is_replaced_not_refused(tmp_path: Path, store: Path) -> None:
    model = candidate(tmp_path / "export", seal=False)
    write_manifest(model, {"version": "an earlier evaluation"})
    write_index(model)  # sealed with that old manifest
    fresh = passed_manifest(model)
    write_manifest(model, fresh)  # evaluate rewrote it: the seal no longer matches that one part
    assert "manifest" not in promotable_bundle(model).parts
    promoted = promote(model, fresh, store)
    assert json.loads(promoted.parts["manifest"].path.read_text())["gate"]["passed"] is True


def test_evaluate_promote_refuses_before_evaluating(
    tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from voiceflow_cli.main import main

    before = package_snapshot()
    bare = candidate(tmp_path / "bare", seal=False)
    argv = ["evaluate", "--model", str(bare), "--gate", "--promote", "--speed-seconds", "0", "--data", str(tmp_path)]
    assert main(argv) == 2
    assert "cannot promote" in capsys.readouterr().err
    sealed = candidate(tmp_path / "sealed")
    argv = ["evaluate", "--model", str(sealed), "--gate", "--promote", "--model-store", str(MODELS_DIR)]
    assert main([*argv, "--speed-seconds", "0", "--data", str(tmp_path)]) == 2
    assert "inside the installed package" in capsys.readouterr().err
    packaged = ["evaluate", "--model", str(DEFAULT_MODEL), "--gate", "--promote", "--data", str(tmp_path)]
    assert main(packaged) == 2
    assert "packaged model" in capsys.readouterr().err
    assert package_snapshot() == before and not store.exists()


def test_an_evaluation_manifest_beside_a_sealed_export_keeps_it_loadable(tmp_path: Path) -> None:
    from pipelines.evaluation.manifest import record_manifest
    from voiceflow.bundle import verify_bundle

    model = candidate(tmp_path / "export")
    record_manifest(model, passed_manifest(model))
    assert "manifest" in verify_bundle(model).parts  # resealed with the manifest: every part matches
    assert EmbeddingModel.load(str(model)).path == model


def test_an_evaluation_never_reseals_a_part_that_changed(tmp_path: Path) -> None:
    from pipelines.evaluation.manifest import record_manifest

    model = candidate(tmp_path / "export")
    part_path(model, "background").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="background"):
        record_manifest(model, passed_manifest(model))
    assert not manifest_path(model).exists()
