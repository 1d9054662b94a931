"""`voiceflow train`: one command for every training task.

The task comes from the preset's folder or the config file's `kind` (pipelines.training.presets),
never from guessing. Each task names the command-line options it takes and the config values they
set, so an option that does not apply (--epochs for the segmentation network, which trains for
--steps) is refused rather than ignored. Every task then runs in the one training loop
(pipelines.training.framework): same checkpoint, resume and curves.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.training.checkpoint import CHECKPOINT
from pipelines.training.config import read_mapping, with_values
from pipelines.training.overrides import overrides_for, task_options
from pipelines.training.presets import SEGMENTATION, find_preset, task_of


@dataclass(frozen=True)
class Trainer:
    """How the command loads and trains one task; the task's modules import torch, so lazily."""

    load_preset: Callable[[str], Any]
    config_from_dict: Callable[[dict[str, Any]], Any]
    train: Callable[..., Any]  # (config, out_dir, *, max_steps, progress) -> framework.TrainResult


def trainer(task: str) -> Trainer:
    if task == SEGMENTATION:
        from pipelines.segmentation import config as segmentation
        from pipelines.segmentation.train import train as train_segmentation

        return Trainer(segmentation.load_preset, segmentation.config_from_dict, train_segmentation)
    from pipelines.training import config, loop

    return Trainer(config.load_preset, config.config_from_dict, loop.train)


def load_run(preset: str | None, config_path: str | None) -> tuple[str, Any]:
    """(task, config) of `--preset NAME` or `--config FILE`."""
    if preset:
        task = find_preset(preset).task
        return task, trainer(task).load_preset(preset)
    values = read_mapping(Path(str(config_path)))
    task = task_of(values)
    return task, trainer(task).config_from_dict({k: v for k, v in values.items() if k != "kind"})


def run_train(args: argparse.Namespace) -> int:
    """The `voiceflow train` handler; returns the exit code."""
    task, config = load_run(args.preset, args.config)
    values, refused = overrides_for(task, vars(args))
    if refused:
        given, takes = ", ".join(refused), ", ".join(task_options(task))
        print(f"voiceflow train: error: {given}: not for {task} training (it takes {takes})", file=sys.stderr)
        return 2
    config = with_values(config, values)
    out = Path(args.out)
    prepare_out(out, args.restart)
    result = trainer(task).train(config, out, max_steps=args.max_steps, progress=not args.no_progress)
    if result.model_path is not None:  # an interrupted run (no model yet) has said so itself
        print(f"trained {result.steps_done} steps in {result.seconds:.0f} s -> {result.model_path}")
        print(f"curves: {out / 'curves.png'}  {out / 'curves.json'}")
    return 0


def prepare_out(out: Path, restart: bool) -> None:
    """--restart sets an existing checkpoint aside; SIGTERM (a pod eviction) stops like Ctrl-C."""
    if restart and (out / CHECKPOINT).exists():
        shutil.move(str(out / CHECKPOINT), str(out / (CHECKPOINT + ".discarded")))

    def _on_sigterm(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # the last checkpoint stays valid

    signal.signal(signal.SIGTERM, _on_sigterm)
