"""A training run's files: the resumable checkpoint and the final model, written atomically.

Every task draws everything random from its seed and the step, so a checkpoint needs only the
task's weights (named state dicts), the optimiser state, the global step and the history, next to
the config that wrote it. A run resumes only under the same config, less where it runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"  # resume state, rewritten atomically
MODEL = "model.pt"  # the final network, what `voiceflow export` takes
# Settings that say where a run executes, not what it computes: a run may stop on a GPU machine
# with batch workers and resume on a CPU one without them.
PLACEMENT = (("device",), ("data", "workers"))


def on_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights as CPU tensors: a checkpoint written on a GPU loads anywhere."""
    return {k: v.detach().cpu() for k, v in state.items()}


def same_run(config: dict[str, Any]) -> dict[str, Any]:
    """The config minus where it runs (PLACEMENT): what a checkpoint must match to be resumed."""
    values: dict[str, Any] = json.loads(json.dumps(config))
    for *parents, key in PLACEMENT:
        level = values
        for parent in parents:
            level = level.get(parent) if isinstance(level, dict) else None  # type: ignore[assignment]
        if isinstance(level, dict):
            level.pop(key, None)
    return values


def save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint intact


def read_checkpoint(path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The resume state at `path` (None when there is none), refused when another config wrote it."""
    if not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    if same_run(state["config"]) != same_run(config):
        raise ValueError(f"{path} was written with another config; use a new --out or --restart")
    return state


def write_checkpoint(
    path: Path,
    config: dict[str, Any],
    weights: dict[str, dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    step: int,
    history: list[dict[str, Any]],
) -> None:
    """`weights` maps each of the task's networks to its state dict (the keys its resume reads)."""
    state = {name: on_cpu(tensors) for name, tensors in weights.items()}
    save_atomic(
        {"config": config, **state, "optimizer": optimizer.state_dict(), "step": step, "history": history}, path
    )


def write_model(
    path: Path,
    format_name: str,
    spec: dict[str, Any],
    weights: dict[str, dict[str, torch.Tensor]],
    config: dict[str, Any],
    metrics: dict[str, float],
    **extra: Any,
) -> None:
    """model.pt: the final network as `voiceflow export` reads it; `format_name` says which task's."""
    state = {name: on_cpu(tensors) for name, tensors in weights.items()}
    save_atomic({"format": format_name, "spec": spec, **state, "config": config, "metrics": metrics, **extra}, path)
