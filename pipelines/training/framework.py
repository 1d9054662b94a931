"""The one training loop: every task (the embedding student, the segmentation network) runs in it.

The loop owns what every run shares: device and determinism, the warm-up/cosine schedule, AdamW
with gradient clipping, the history, the progress bar, checkpoints and resume, early stopping
(`max_steps`) and the curves. A task (`Task`) brings its data, networks and loss: it builds its
batches from (seed, step) alone, so a run interrupted and resumed ends with exactly the weights of
an uninterrupted one, and a checkpoint needs only weights, optimiser state, step and history.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from pipelines.nn.device import configure_determinism, resolve_device
from pipelines.training.checkpoint import CHECKPOINT, read_checkpoint, write_checkpoint
from pipelines.training.settings import RunConfig

GRADIENT_CLIP = 5.0
Batch_contra = TypeVar("Batch_contra", contravariant=True)


@dataclass(frozen=True)
class StepLoss:
    """One step's loss and what the history logs of it."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)  # logged after "loss", in this order
    tags: dict[str, Any] = field(default_factory=dict)  # logged before "lr" (the student's epoch)


@dataclass(frozen=True)
class Validation:
    entry: dict[str, Any]  # the history entry
    message: str  # what the run prints


@dataclass(frozen=True)
class Finished:
    """What a task's `finish` wrote and measured."""

    model_path: Path
    metrics: dict[str, float]  # the final validation scores (TrainResult.metrics)
    summary: dict[str, Any]  # train_summary.json, beside the model


class Task(Protocol[Batch_contra]):
    """What a task brings to the loop. It is built (data loaded) before the checkpoint is read."""

    @property
    def total_steps(self) -> int: ...
    @property
    def shown(self) -> tuple[str, ...]:
        """The history keys on the progress bar."""
        ...

    def batches(self, start: int, stop: int) -> Iterable[Any]:
        """Steps start..stop-1's batches; called before `build` (batch workers never see the networks)."""
        ...

    def build(self, fresh: bool) -> list[torch.nn.Parameter]:
        """The networks, right after the loop seeded torch; returns what the optimiser trains."""
        ...

    def weights(self) -> dict[str, dict[str, torch.Tensor]]: ...
    def load_weights(self, state: dict[str, Any]) -> None: ...
    def first_entries(self) -> list[dict[str, Any]]:
        """History a fresh run starts with (the untrained network's scores)."""
        ...

    def loss(self, batch: Batch_contra) -> StepLoss: ...
    def validation(self, last: dict[str, Any], elapsed_s: float) -> Validation | None:
        """Held-out scores after the step whose history entry is `last`, when it is one to score."""
        ...

    def checkpoint_due(self, step: int) -> bool:
        """Extra checkpoints besides every `checkpoint_every` steps and the last step."""
        ...

    def finish(self, out_dir: Path, history: list[dict[str, Any]], seconds: float) -> Finished:
        """Write the final model (model.pt, checkpoint.write_model) of a completed run."""
        ...

    def close(self) -> None: ...


# How the loop builds a task, once the device is known: a task class, (config, device, progress, log).
TaskFactory = Callable[[Any, torch.device, bool, Callable[[str], None]], Task[Any]]


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    model_path: Path | None  # None when stopped early (max_steps)
    steps_done: int
    total_steps: int
    seconds: float
    metrics: dict[str, float]
    history: list[dict[str, Any]]


def warmup_cosine(peak: float, warmup_steps: int, step: int, total: int) -> float:
    """Linear warm-up then cosine decay: a pure function of the step, so nothing to checkpoint."""
    warm = min(1.0, (step + 1) / max(warmup_steps, 1))
    return peak * warm * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def run_training(
    make_task: TaskFactory,
    config: RunConfig,
    out_dir: Path,
    *,
    max_steps: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train (or resume training of) the networks of `make_task`'s task for `config` into `out_dir`.
    Each task module binds its own task class: `train = partial(run_training, ItsTask)`.

    `max_steps` stops after that many global steps with a checkpoint written, as if the run had
    been interrupted there (used by tests and by time-boxed jobs).
    """
    from tqdm import tqdm

    from pipelines.training.curves import write_curves

    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(config.torch_threads, 1))
    device = resolve_device(config.device)
    configure_determinism(device)
    task = make_task(config, device, progress, log)
    ckpt_path = out_dir / CHECKPOINT
    state = read_checkpoint(ckpt_path, config.to_dict())
    step = int(state["step"]) if state is not None else 0
    total = task.total_steps
    stop_at = total if max_steps is None else min(total, max_steps)
    bar = tqdm(total=total, initial=step, desc=config.name, unit="step", disable=not progress)
    try:
        batches = task.batches(step, stop_at)
        # Seeded right before the weights are drawn: whatever the task's data loading drew (a
        # teacher cache that built a network) must not change the initial weights.
        torch.manual_seed(config.seed)
        params = task.build(fresh=state is None)
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        if state is not None:
            task.load_weights(state)
            optimizer.load_state_dict(state["optimizer"])
            history = list(state["history"])
            log(f"resuming from step {step}/{total} ({ckpt_path})")
        else:
            history = task.first_entries()
        for batch in batches:
            lr = warmup_cosine(config.lr, config.warmup_steps, step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = task.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            torch.nn.utils.clip_grad_norm_(params, GRADIENT_CLIP)
            optimizer.step()
            step += 1
            entry = {"kind": "step", "step": step, **loss.tags, "lr": lr, "loss": loss.total.item()}
            entry.update({name: term.item() for name, term in loss.terms.items()})
            history.append(entry)
            bar.update(1)
            bar.set_postfix({key: f"{entry[key]:.4f}" for key in task.shown})
            validation = task.validation(entry, time.monotonic() - started)
            if validation is not None:
                history.append(validation.entry)
                (bar.write if progress else log)(validation.message)
            if step % config.checkpoint_every == 0 or task.checkpoint_due(step) or step == stop_at:
                write_checkpoint(ckpt_path, config.to_dict(), task.weights(), optimizer, step, history)
    finally:
        task.close()
        bar.close()
    seconds = time.monotonic() - started
    if step < total:
        log(f"stopped at step {step}/{total}; rerun the same command to resume")
        return TrainResult(out_dir, None, step, total, seconds, {}, history)
    write_curves(history, out_dir)
    finished = task.finish(out_dir, history, seconds)
    (out_dir / "train_summary.json").write_text(json.dumps(finished.summary, indent=2) + "\n")
    return TrainResult(out_dir, finished.model_path, step, total, seconds, finished.metrics, history)
