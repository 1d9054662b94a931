"""`voiceflow register` stores the whole bundle the gate scored, sealed, as STORE/VERSION/model.*:
the operator's export Job publishes exactly that folder's bundle for serving (tests/operator)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.evaluation.manifest import build_manifest, record_manifest
from voiceflow.bundle import (
    PART_SUFFIXES,
    PUBLISHED_MODEL,
    file_sha256,
    index_path,
    part_path,
    verify_bundle,
    write_index,
)
from voiceflow_cli.main import main


def report(der: float) -> dict[str, Any]:
    rows = {name: {"der": der, "der_collar_0.25": der / 2} for name in ("ami-dev", "sim-dev")}
    return {"der": rows, "mean_der": der}


def exported_bundle(folder: Path, name: str = "candidate.onnx", plda: bool = True) -> Path:
    """What the workflow's export + evaluate steps leave: a sealed bundle with the evaluation's manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / name
    model.write_bytes(b"onnx graph bytes")
    part_path(model, "metadata").write_text(json.dumps({"version": "student-abc", "training": {"config": {}}}))
    np.save(part_path(model, "background"), np.arange(4, dtype=np.float32))
    if plda:
        np.savez(part_path(model, "plda"), mean=np.zeros(3), transform=np.eye(3))
    write_index(model)
    record_manifest(model, build_manifest(model, evaluation=report(0.2)))  # evaluate rewrites it and reseals
    return model


def register_argv(model: Path, tmp_path: Path, version: str = "v3", candidate_der: float = 0.2) -> list[str]:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"model": report(candidate_der), "baseline": report(0.2)}))
    store = tmp_path / "store"
    return ["register", "--model", str(model), "--metrics", str(metrics), "--version", version, "--store", str(store)]


def test_register_stores_every_part_of_the_evaluated_bundle_sealed(tmp_path: Path) -> None:
    model = exported_bundle(tmp_path / "workspace")
    assert main(register_argv(model, tmp_path)) == 0
    stored = tmp_path / "store" / "v3" / PUBLISHED_MODEL  # one name whatever the evaluated file was called
    bundle = verify_bundle(stored)  # sealed: every part checked against the new index
    assert bundle.indexed and bundle.roles == sorted(PART_SUFFIXES)
    for role in ("model", "background", "plda"):  # what the gate scored, byte for byte
        assert file_sha256(part_path(stored, role)) == file_sha256(part_path(model, role)), role
    assert json.loads(part_path(stored, "metadata").read_text())["version"] == "v3"
    manifest = json.loads(part_path(stored, "manifest").read_text())
    assert manifest["version"] == "v3" and manifest["gate"]["passed"] is True
    assert manifest["model"]["file"] == PUBLISHED_MODEL
    evaluated = manifest["evaluated_bundle"]
    assert evaluated["sealed"] is True and set(evaluated["parts"]) == {"model", "metadata", "background", "plda"}
    assert evaluated["parts"]["plda"] == file_sha256(part_path(model, "plda"))


def test_a_refused_version_is_stored_whole_too(tmp_path: Path) -> None:
    model = exported_bundle(tmp_path / "workspace")
    assert main([*register_argv(model, tmp_path, candidate_der=0.4), "--der-margin", "0.0"]) == 3
    stored = verify_bundle(tmp_path / "store" / "v3" / PUBLISHED_MODEL)
    assert stored.roles == sorted(PART_SUFFIXES)
    assert json.loads(stored.parts["manifest"].path.read_text())["gate"]["passed"] is False


def test_a_part_changed_after_the_gate_scored_it_is_not_registered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = exported_bundle(tmp_path / "workspace")
    np.savez(part_path(model, "plda"), mean=np.ones(3), transform=np.eye(3))  # not what was sealed and scored
    assert main(register_argv(model, tmp_path)) == 1
    assert "corrupt" in capsys.readouterr().err
    assert not (tmp_path / "store" / "v3").exists()


def test_a_missing_part_is_not_registered(tmp_path: Path) -> None:
    model = exported_bundle(tmp_path / "workspace")
    part_path(model, "background").unlink()
    assert main(register_argv(model, tmp_path)) == 1
    assert not (tmp_path / "store" / "v3").exists()


def test_registering_a_version_again_leaves_no_part_of_the_earlier_bundle(tmp_path: Path) -> None:
    assert main(register_argv(exported_bundle(tmp_path / "first"), tmp_path)) == 0
    again = exported_bundle(tmp_path / "second", plda=False)
    assert main(register_argv(again, tmp_path)) == 0
    stored = tmp_path / "store" / "v3" / PUBLISHED_MODEL
    assert "plda" not in verify_bundle(stored).parts  # no stale PLDA inherited: it would change the clustering
    assert not part_path(stored, "plda").exists()


def test_a_bare_model_is_registered_and_sealed(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"a user's own graph")
    assert main(register_argv(model, tmp_path)) == 0
    stored = tmp_path / "store" / "v3" / PUBLISHED_MODEL
    assert index_path(stored).is_file()
    assert verify_bundle(stored).roles == ["manifest", "model"]
