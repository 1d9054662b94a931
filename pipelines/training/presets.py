"""Which task a training config trains, and every bundled config (preset) by its command-line name.

A config file names its task with a top-level `kind` (no `kind`: the embedding student, as every
older config); a preset's task is the folder it ships in. `voiceflow train` dispatches on these
two rules only. Torch-free: the Control API lists and checks presets without the train extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMBEDDING = "embedding"  # the speaker-embedding student (pipelines/training/loop.py)
SEGMENTATION = "segmentation"  # the segmentation network / overlap detector (pipelines/segmentation/train.py)
TASKS = (EMBEDDING, SEGMENTATION)
_PIPELINES = Path(__file__).resolve().parents[1]
# Each task's preset folder, and the prefix its presets' command-line names carry.
PRESET_FOLDERS: dict[str, tuple[Path, str]] = {
    EMBEDDING: (_PIPELINES / "presets", ""),
    SEGMENTATION: (_PIPELINES / "segmentation" / "presets", "segmentation-"),
}


@dataclass(frozen=True)
class Preset:
    name: str  # what `voiceflow train --preset` takes
    task: str
    path: Path


def presets(task: str | None = None) -> dict[str, Preset]:
    """The bundled configs of `task` (None: of every task), by name."""
    found = {}
    for kind, (folder, prefix) in PRESET_FOLDERS.items():
        if task in (None, kind):
            for path in sorted(folder.glob("*.yaml")):
                found[prefix + path.stem] = Preset(prefix + path.stem, kind, path)
    return found


def find_preset(name: str, task: str | None = None) -> Preset:
    known = presets(task)
    if name not in known:
        which = f"{task} preset" if task else "preset"
        raise ValueError(f"unknown {which} {name!r}; presets: {', '.join(known)}")
    return known[name]


def task_of(values: Mapping[str, Any]) -> str:
    """The task a config mapping trains: its `kind`, the embedding student when it has none."""
    kind = values.get("kind", EMBEDDING)
    if kind not in TASKS:
        raise ValueError(f"kind must be one of {', '.join(TASKS)}, not {kind!r}")
    return str(kind)
