"""Per-version manifests (stored beside the model) and promotion of a version into the model store.

A manifest answers "what is this model and may it serve": version, data, config, git commit,
metrics, gate decision and the ONNX sha256 the runtime can verify against the file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import voiceflow
from pipelines.export.checkpoint import sha256_file
from pipelines.paths import REPO_ROOT
from voiceflow.bundle import (
    PUBLISHED_MODEL,
    BundleError,
    ModelBundle,
    describe_bundle,
    index_path,
    part_path,
    publish_bundle,
    verify_bundle,
    write_index,
)

MANIFEST_ROLE = "manifest"  # the bundle part the gate's record is


def read_model_metadata(model_path: Path) -> dict[str, Any]:
    """The metadata JSON beside a model (`<stem>.json`), {} when there is none; unreadable is an error."""
    meta_path = Path(model_path).with_suffix(".json")
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{meta_path}: unreadable model metadata ({err})") from err
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: model metadata must be a JSON object, not {type(meta).__name__}")
    return meta


def manifest_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".manifest.json")


def git_commit(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The code's commit and whether the tree had local changes (a dirty build is not reproducible)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--", "pipelines", "voiceflow"],
                cwd=repo,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def build_manifest(
    model_path: Path,
    *,
    evaluation: dict[str, Any] | None = None,
    gate: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    baseline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    model_path = Path(model_path)
    meta = read_model_metadata(model_path)
    training = training or {}
    config = training.get("config", {})
    return {
        "format": "voiceflow-manifest-1",
        "version": meta.get("version") or model_path.stem,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {
            "file": model_path.name,
            "sha256": sha256_file(model_path),
            "quantization": meta.get("quantization", "none"),
            "metadata": meta,
        },
        "data": data_sources(config),
        "config": config,
        "git": git_commit(),
        "training": {k: v for k, v in training.items() if k != "config"},
        "metrics": evaluation or {},
        "baseline": baseline or {},
        "gate": gate or {},
    }


def data_sources(config: dict[str, Any]) -> dict[str, Any]:
    data = config.get("data", {})
    if not data:
        return {}
    return {
        "librispeech": data.get("librispeech"),
        "librispeech_speakers": data.get("max_speakers") or "all training-split speakers",
        "ami": [f"{data.get('ami')}/{name}" for name in data.get("ami_files", [])],
        "augmentation": data.get("augmentation"),
        "held_out": "pipelines.simulation.split_speakers held-out speakers (the sim-dev voices): never trained on",
    }


def write_manifest(model_path: Path, manifest: dict[str, Any]) -> Path:
    path = manifest_path(model_path)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def record_manifest(model_path: Path, manifest: dict[str, Any]) -> Path:
    """Write an evaluation's manifest beside the model; a sealed bundle is resealed with it, so
    the model still loads by its path (a stale seal is refused by the engine). Every other part
    must still match the old seal: an evaluation never blesses a part that changed under it."""
    sealed = index_path(model_path).is_file()
    if sealed:
        verify_bundle(model_path, ignore={MANIFEST_ROLE})
    path = write_manifest(model_path, manifest)
    if sealed:
        write_index(model_path)
    return path


def copy_bundle_parts(source: ModelBundle, target: Path, action: str) -> None:
    """Copy every part of `source` but its manifest beside `target` (a model path: its parts take
    its stem); BundleError when a part changed while it was copied (then it is not `action`)."""
    for role, part in source.parts.items():
        if role != MANIFEST_ROLE:
            shutil.copyfile(part.path, part_path(target, role))
    copied = describe_bundle(target).parts
    changed = [role for role in copied if role in source.parts and copied[role].sha256 != source.parts[role].sha256]
    if changed:
        raise BundleError(f"{source.model_path}: part {changed[0]!r} changed while it was copied; not {action}")


def promotable_bundle(model_path: Path) -> ModelBundle:
    """The candidate's sealed bundle, every part checked, or a BundleError saying why it cannot be
    promoted. Its manifest is left out: the evaluation that promotes writes a fresh one."""
    model_path = Path(model_path)
    if not index_path(model_path).is_file():
        raise BundleError(
            f"{model_path}: not a sealed bundle (no {index_path(model_path).name}); "
            f"`voiceflow bundle seal {model_path}` seals the parts beside it"
        )
    return verify_bundle(model_path, ignore={MANIFEST_ROLE})


def refuse_package_store(store: Path) -> None:
    """The store must be outside the installed engine: promotion never writes into site-packages."""
    package = Path(voiceflow.__file__).resolve().parent
    if store.resolve().is_relative_to(package):
        raise ValueError(f"{store}: inside the installed package {package}; the model store must be outside it")


def promote(model_path: Path, manifest: dict[str, Any], store: Path) -> ModelBundle:
    """Publish a gate-passing candidate into the model store: its sealed bundle, with this
    evaluation's manifest, becomes the store's `current` in one atomic switch, and the engine
    serves it by default from then on (voiceflow.model_store). The installed package is not written."""
    if not manifest.get("gate", {}).get("passed"):
        raise ValueError("refusing to promote: the manifest's gate decision is not 'passed'")
    store = Path(store)
    refuse_package_store(store)
    source = promotable_bundle(model_path)
    with tempfile.TemporaryDirectory(prefix="voiceflow-promote-") as staging:
        # The whole bundle moves (background mean, calibration, PLDA...): a promoted copy without
        # its background mean would stream every speaker as one. The manifest joins it, sealed.
        target = Path(staging) / PUBLISHED_MODEL
        copy_bundle_parts(source, target, "promoted")
        write_manifest(target, dict(manifest, model=dict(manifest["model"], file=target.name)))
        write_index(target)
        return publish_bundle(target, store)
