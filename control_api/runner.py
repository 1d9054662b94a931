"""Embedded registry work: run the pipelines' `train` / `export` commands for a leased model.

The commands come from configurable templates (`VOICEFLOW_TRAIN_COMMAND`, `VOICEFLOW_EXPORT_COMMAND`),
split with shlex *before* the placeholders are filled, so a path with spaces stays one argument and
nothing is ever passed through a shell.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from control_api import queue, registry
from control_api.db import session_scope
from control_api.models import RegistryModel, utcnow
from control_api.settings import Settings
from voiceflow.bundle import BundleError, index_path, verify_bundle, write_index

log = logging.getLogger(__name__)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".onnx")
MAX_LOG_CHARS = 2000
# Models waiting to be trained, then to be exported; the longest-waiting first.
TRAINS = queue.WorkQueue(RegistryModel, registry.TRAIN_QUEUED, registry.TRAINING, order_by=RegistryModel.updated_at)
EXPORTS = queue.WorkQueue(RegistryModel, registry.EXPORT_QUEUED, registry.EXPORTING, order_by=RegistryModel.updated_at)


def render_command(template: str, **values: str) -> list[str]:
    """shlex-split `template`, then fill `{placeholders}` inside each argument."""
    values = {"python": sys.executable, **values}
    try:
        return [part.format(**values) for part in shlex.split(template)]
    except KeyError as exc:
        raise ValueError(f"unknown placeholder {exc} in command template {template!r}") from exc


PREFERRED_CHECKPOINTS = ("model.pt", "checkpoint.pt")  # what `voiceflow train` writes, best first


def find_checkpoint(output_dir: Path) -> Path:
    """The checkpoint the trainer wrote (model.pt, else checkpoint.pt, else the only one), else the folder."""
    for name in PREFERRED_CHECKPOINTS:
        if (output_dir / name).is_file():
            return output_dir / name
    found = sorted(p for p in output_dir.rglob("*") if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    return found[0] if len(found) == 1 else output_dir


def read_metrics(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _numbers(data: dict[str, Any]) -> dict[str, Any]:
    # Metadata also holds names and paths; only its numeric figures are metrics.
    return {k: v for k, v in data.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def flatten_numbers(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested report as dotted keys: {"der": {"dev": 0.1}} -> {"der.dev": 0.1}."""
    flat: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_numbers(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def run_command(argv: list[str], *, timeout_s: float, cwd: Path) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError as exc:
        return 127, str(exc)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout_s:.0f} s"
    return proc.returncode, (proc.stdout + proc.stderr)[-MAX_LOG_CHARS:]


def run_step(settings: Settings, what: str, template: str, work: Path, **values: str) -> str | None:
    """Run one configured command in `work`: None when it exits 0, else why it failed (with its log tail)."""
    argv = render_command(template, **values)
    code, log_tail = run_command(argv, timeout_s=settings.command_timeout_s, cwd=work)
    return None if code == 0 else f"{what} exited with {code}: {log_tail}"


def placeholders(model_id: str, name: str, version: int) -> dict[str, str]:
    """What every registry command template may name, besides its own paths."""
    return {"model_id": model_id, "name": name, "version": str(version)}


def model_dir(settings: Settings, model_id: str) -> Path:
    return settings.storage_dir / "models" / model_id


def train(settings: Settings, model_id: str, config: dict[str, Any], name: str, version: int) -> dict[str, Any]:
    """Run the train command; the registry changes to write (state trained or failed, and what it made)."""
    work = model_dir(settings, model_id)
    output_dir = work / "train"
    output_dir.mkdir(parents=True, exist_ok=True)
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
    paths = {"config": str(config_path), "output_dir": str(output_dir)}
    failed = run_step(settings, "train", settings.train_command, work, **paths, **placeholders(model_id, name, version))
    if failed:
        return {"state": registry.FAILED, "error": failed}
    return {
        "state": registry.TRAINED,
        "checkpoint_uri": find_checkpoint(output_dir).as_uri(),
        "metrics": read_metrics(output_dir / "metrics.json"),
        "error": None,
    }


def export(settings: Settings, model_id: str, checkpoint_uri: str, name: str, version: int) -> dict[str, Any]:
    work = model_dir(settings, model_id)
    export_dir = work / "export"
    export_dir.mkdir(parents=True, exist_ok=True)
    output = export_dir / "model.onnx"
    output.unlink(missing_ok=True)  # a re-export must not pass on the previous file
    checkpoint = checkpoint_uri.removeprefix("file://")
    ids = placeholders(model_id, name, version)
    paths = {"checkpoint": checkpoint, "output": str(output), "output_dir": str(export_dir)}
    failed = run_step(settings, "export", settings.export_command, work, **paths, **ids)
    if failed:
        return {"state": registry.FAILED, "error": failed}
    if not output.is_file():
        return {"state": registry.FAILED, "error": f"export succeeded but wrote no {output.name}"}
    try:
        digest = sealed_digest(output)
    except BundleError as exc:
        return {"state": registry.FAILED, "error": f"export wrote a broken model bundle: {exc}"}
    # The exporter's metadata (`model.json`) and a metrics.json, when present.
    metrics = {**_numbers(read_metrics(output.with_suffix(".json"))), **read_metrics(export_dir / "metrics.json")}
    if settings.evaluate_command:
        report = export_dir / "evaluation.json"
        paths = {"model": str(output), "json_out": str(report)}
        failed = run_step(settings, "evaluation", settings.evaluate_command, work, **paths, **ids)
        if failed:
            return {"state": registry.FAILED, "error": failed}
        metrics.update(flatten_numbers(read_metrics(report).get("model") or {}))
    return {
        "state": registry.EXPORTED,
        "artifact_uri": output.as_uri(),
        # The registry's identity of a model is its bundle's: the ONNX and every sidecar it serves with.
        "sha256": digest,
        "metrics_update": metrics,
        "error": None,
    }


def sealed_digest(model: Path) -> str:
    """The bundle digest of an exported model, sealing the bundle when the exporter did not."""
    return verify_bundle(model).digest if index_path(model).is_file() else write_index(model).digest


def process_next(factory: sessionmaker[Session], settings: Settings, *, worker_id: str) -> bool:
    """Lease one queued train or export and run it. False when there is nothing to do."""
    for work in (TRAINS, EXPORTS):
        with session_scope(factory) as session:
            row = queue.claim_next(session, work, worker_id=worker_id, lease_s=settings.lease_s, now=utcnow())
            if row is None:
                continue
            model_id, name, version = row.id, row.name, row.version
            config, checkpoint_uri = dict(row.config or {}), row.checkpoint_uri or ""
        with queue.LeaseKeeper(factory, work, model_id, worker_id=worker_id, lease_s=settings.lease_s):
            try:
                if work is TRAINS:
                    changes = train(settings, model_id, config, name, version)
                else:
                    changes = export(settings, model_id, checkpoint_uri, name, version)
            except Exception as exc:  # a broken template or full disk fails this model, not the worker
                log.exception("registry work on %s failed", model_id)
                changes = {"state": registry.FAILED, "error": f"{type(exc).__name__}: {exc}"}
        _record(factory, model_id, worker_id, work.running, changes)
        return True
    return False


def _record(
    factory: sessionmaker[Session], model_id: str, worker_id: str, running: str, changes: dict[str, Any]
) -> None:
    with session_scope(factory) as session:
        row = session.get(RegistryModel, model_id, with_for_update=True)
        if row is None or row.claimed_by != worker_id or row.state != running:
            log.warning("lost the lease on model %s; discarding this worker's result", model_id)
            return
        metrics_update = changes.pop("metrics_update", None)
        if metrics_update:
            changes["metrics"] = {**(row.metrics or {}), **metrics_update}
        registry.touch(row, "worker", **changes, lease_expires_at=None)
