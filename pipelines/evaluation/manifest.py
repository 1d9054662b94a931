"""Per-version manifests (stored beside the model) and promotion of a version to the default.

A manifest answers "what is this model and may it serve": version, data, config, git commit,
metrics, gate decision and the ONNX sha256 the runtime can verify against the file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from pipelines.export.checkpoint import sha256_file
from pipelines.paths import REPO_ROOT
from voiceflow.bundle import index_path, part_path, present_parts, verify_bundle, write_index

DEFAULT_POINTER = "default.json"  # in voiceflow/models/: which bundled model the engine should load


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


def promote(model_path: Path, manifest: dict[str, Any], models_dir: Path, name: str = "student") -> Path:
    """Copy a gate-passing model into `models_dir` as `<name>.onnx` (+ .json, manifest) and point
    `default.json` at it. Never overwrites ge2e.onnx: the teacher stays available as a fallback."""
    if not manifest.get("gate", {}).get("passed"):
        raise ValueError("refusing to promote: the manifest's gate decision is not 'passed'")
    models_dir = Path(models_dir)
    target = models_dir / f"{name}.onnx"
    if target.name == "ge2e.onnx":
        raise ValueError("the bundled GE2E model is never replaced")
    # The whole bundle moves (background mean, calibration, PLDA...): a promoted copy without its
    # background mean would stream every speaker as one. The manifest joins it, then it is sealed.
    source = verify_bundle(Path(model_path))
    for stale in [*present_parts(target).values(), index_path(target)]:
        stale.unlink(missing_ok=True)
    for role, part in source.parts.items():
        if role != "manifest":
            shutil.copyfile(part.path, part_path(target, role))
    write_manifest(target, dict(manifest, model=dict(manifest["model"], file=target.name)))
    bundle = write_index(target)
    pointer = {
        "model": target.name,
        "sha256": manifest["model"]["sha256"],
        "version": manifest["version"],
        "manifest": manifest_path(target).name,
        "fallback": "ge2e.onnx",
        "bundle_digest": bundle.digest,
    }
    pointer_path = models_dir / DEFAULT_POINTER
    pointer_path.write_text(json.dumps(pointer, indent=2, sort_keys=True) + "\n")
    return pointer_path
