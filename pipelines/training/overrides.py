"""The command-line options that override a training config's values, and the tasks each applies to.

One table for the parser (pipelines/cli.py) and the command (pipelines/train_command.py), so an
option, the config value it sets and the tasks that take it are written once. Imports nothing
heavy: `voiceflow --help` builds its parser from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.training.presets import EMBEDDING, SEGMENTATION, TASKS


@dataclass(frozen=True)
class Override:
    flag: str
    path: str  # the config value it sets, dotted ("data.data_root")
    help: str
    type: type = str
    tasks: tuple[str, ...] = TASKS
    choices: tuple[str, ...] | None = None

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


_DATA_ROOT_HELP = "folder holding librispeech-train-clean-100/, ami-excerpts/, augmentation/"
_WORKERS_HELP = "segmentation: batch-building processes (same batches for any N)"
OVERRIDES = (
    Override("--data-root", "data.data_root", _DATA_ROOT_HELP),
    Override("--seed", "seed", "override the config's seed", int),
    Override("--epochs", "epochs", "override the config's epochs (embedding student)", int, (EMBEDDING,)),
    Override("--steps", "steps", "override the config's steps (segmentation)", int, (SEGMENTATION,)),
    Override("--batch-size", "batch_size", "override the config's batch size", int),
    Override("--lr", "lr", "override the config's learning rate", float),
    Override("--threads", "torch_threads", "torch threads (override the config's torch_threads)", int),
    Override("--device", "device", "where to train (auto: CUDA when present)", choices=("auto", "cpu", "cuda")),
    Override("--workers", "data.workers", _WORKERS_HELP, int, (SEGMENTATION,)),
)


def add_override_arguments(parser: Any) -> None:
    for option in OVERRIDES:
        parser.add_argument(option.flag, type=option.type, choices=option.choices, help=option.help)


def overrides_for(task: str, given: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(config values to set, options given that `task` does not take) of the options `given` (by dest;
    None = not given)."""
    values: dict[str, Any] = {}
    refused: list[str] = []
    for option in OVERRIDES:
        value = given.get(option.dest)
        if value is None:
            continue
        if task in option.tasks:
            values[option.path] = value
        else:
            refused.append(option.flag)
    return values, refused


def task_options(task: str) -> list[str]:
    """The flags only `task` takes (what an error about a refused option suggests instead)."""
    return [option.flag for option in OVERRIDES if option.tasks == (task,)]
