"""A model is one bundle: every part verified at load, one digest, moved whole and atomically."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from voiceflow.bundle import (
    BundleError,
    active_bundle,
    index_path,
    model_file_in,
    publish_bundle,
    verify_bundle,
    write_index,
)
from voiceflow.embedding import DEFAULT_MODEL, EmbeddingModel, ModelError, background_path, default_model_path


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    """A copy of the bundled GE2E bundle (onnx, metadata, background, index) as `ge2e.*`."""
    folder = tmp_path / "src"
    folder.mkdir()
    for part in DEFAULT_MODEL.parent.glob("ge2e.*"):
        shutil.copyfile(part, folder / part.name)
    return folder


def test_shipped_models_are_sealed_bundles_with_their_background() -> None:
    for model in (DEFAULT_MODEL, default_model_path()):
        bundle = verify_bundle(model)
        assert bundle.indexed and {"model", "metadata", "background"} <= set(bundle.roles)
        loaded = EmbeddingModel.load(model)
        assert loaded.background_mean is not None and loaded.bundle_digest == bundle.digest


def test_missing_background_is_refused_at_load(bundle_dir: Path) -> None:
    background_path(bundle_dir / "ge2e.onnx").unlink()
    with pytest.raises(ModelError, match="'background' is missing"):
        EmbeddingModel.load(bundle_dir / "ge2e.onnx")


def test_corrupt_part_is_refused_at_load(bundle_dir: Path) -> None:
    meta = bundle_dir / "ge2e.json"
    meta.write_text(meta.read_text().replace("{", "{ ", 1))
    with pytest.raises(ModelError, match="'metadata' is corrupt"):
        EmbeddingModel.load(bundle_dir / "ge2e.onnx")


def test_a_stray_sidecar_that_is_not_in_the_bundle_is_refused(bundle_dir: Path) -> None:
    (bundle_dir / "ge2e.manifest.json").write_text("{}")
    with pytest.raises(BundleError, match="not part of the bundle"):
        verify_bundle(bundle_dir / "ge2e.onnx")


@pytest.mark.parametrize(
    "index",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"format": 1, "parts": {"background": "0" * 64}, "digest": "x"}),
        json.dumps({"format": 1, "parts": {"model": "zz"}, "digest": "x"}),
        json.dumps({"format": 1, "parts": {"model": "0" * 64, "../../etc/passwd": "0" * 64}, "digest": "x"}),
        json.dumps({"format": 99, "parts": {"model": "0" * 64}}),
        "{" + " " * 70_000 + "}",
    ],
)
def test_malformed_or_hostile_index_is_refused(bundle_dir: Path, index: str) -> None:
    index_path(bundle_dir / "ge2e.onnx").write_text(index)
    with pytest.raises(BundleError):
        verify_bundle(bundle_dir / "ge2e.onnx")


def test_a_tampered_digest_is_refused(bundle_dir: Path) -> None:
    path = index_path(bundle_dir / "ge2e.onnx")
    data = json.loads(path.read_text())
    data["digest"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(BundleError, match="digest does not match"):
        verify_bundle(bundle_dir / "ge2e.onnx")


def test_digest_covers_every_part_and_survives_renaming(bundle_dir: Path, tmp_path: Path) -> None:
    original = verify_bundle(bundle_dir / "ge2e.onnx")
    published = publish_bundle(bundle_dir / "ge2e.onnx", tmp_path / "active")
    assert published.digest == original.digest and published.model_path.name == "model.onnx"
    np.save(background_path(bundle_dir / "ge2e.onnx"), np.zeros(256, np.float32))
    assert write_index(bundle_dir / "ge2e.onnx").digest != original.digest


def test_publish_switches_the_whole_bundle_atomically_and_prunes(tmp_path: Path) -> None:
    active = tmp_path / "active"
    first = publish_bundle(DEFAULT_MODEL, active)
    second = publish_bundle(default_model_path(), active)
    assert os.path.islink(active / "current")
    served = active_bundle(active)
    assert served is not None and served.digest == second.digest != first.digest
    assert model_file_in(active) == active / "bundles" / second.digest[:16] / "model.onnx"
    assert EmbeddingModel.load(active).bundle_digest == second.digest  # a folder loads what it serves
    third = publish_bundle(DEFAULT_MODEL, active, keep=1)  # republishing reuses the intact copy
    assert third.digest == first.digest
    kept = sorted(p.name for p in (active / "bundles").iterdir())
    assert kept == [first.digest[:16]]


def test_publish_refuses_a_broken_source_and_keeps_serving(tmp_path: Path, bundle_dir: Path) -> None:
    active = tmp_path / "active"
    good = publish_bundle(DEFAULT_MODEL, active)
    background_path(bundle_dir / "ge2e.onnx").write_bytes(b"garbage")
    with pytest.raises(BundleError, match="corrupt"):
        publish_bundle(bundle_dir / "ge2e.onnx", active)
    served = active_bundle(active)
    assert served is not None and served.digest == good.digest


def test_a_bare_model_without_index_still_loads_described(tmp_path: Path) -> None:
    shutil.copyfile(DEFAULT_MODEL, tmp_path / "mine.onnx")
    model = EmbeddingModel.load(tmp_path / "mine.onnx")
    assert model.bundle is not None and not model.bundle.indexed and model.bundle_parts == ["model"]


def test_every_part_of_a_shipped_bundle_is_package_data() -> None:
    import fnmatch
    import tomllib

    root = DEFAULT_MODEL.parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["voiceflow"]
    for index in DEFAULT_MODEL.parent.glob("*.bundle.json"):
        bundle = verify_bundle(index.with_name(index.name.removesuffix(".bundle.json") + ".onnx"))
        for path in [*(part.path for part in bundle.parts.values()), index]:
            relative = str(path.relative_to(root / "voiceflow"))
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), f"{relative} is not packaged"
