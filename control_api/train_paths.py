"""Where an embedded training run may read and write: the paths of a train config, confined to roots.

The embedded worker runs `voiceflow train` as the API's own user, so a config naming `data_root: /etc`
or `cache_dir: /home/someone` would read or write there. Every path a user gives (`data.data_root`, its
folders and meeting names, `cache_dir`) must resolve inside one of the configured roots
(`VOICEFLOW_TRAIN_ROOTS`); the default roots are `/data`, the trainer's default data folder and the API's
state folder. Keys the user leaves out keep the trainer's defaults and are not checked here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from control_api.training import ConfigError, config_from_dict

DATA_FOLDER_KEYS = ("librispeech", "ami", "augmentation")
DATA_NAME_LIST_KEYS = ("ami_files", "calibration_ami_files")


def default_roots(state_dir: Path) -> list[Path]:
    return [Path("/data"), config_from_dict({}).data.root(), Path(state_dir)]


def parse_roots(text: str, state_dir: Path) -> list[Path]:
    """`VOICEFLOW_TRAIN_ROOTS` (comma-separated folders) as paths; empty: the default roots."""
    given = [Path(part.strip()) for part in text.split(",") if part.strip()]
    return given or default_roots(state_dir)


def confine(config: dict[str, Any], roots: Sequence[Path]) -> None:
    """ConfigError (a 422 naming the key) for any user-given path outside `roots`."""
    resolved_roots = [Path(os.path.realpath(root)) for root in roots]
    given = config.get("data")
    data: dict[str, Any] = given if isinstance(given, dict) else {}
    if data.get("data_root") is not None:
        _inside(("config", "data", "data_root"), str(data["data_root"]), resolved_roots)
    for key in DATA_FOLDER_KEYS:
        if data.get(key) is not None:
            _plain_relative(("config", "data", key), str(data[key]))
    for key in DATA_NAME_LIST_KEYS:
        for index, name in enumerate(data.get(key) or []):
            _plain_relative(("config", "data", key, index), str(name))
    if config.get("cache_dir") is not None:
        _inside(("config", "cache_dir"), str(config["cache_dir"]), resolved_roots)


def _inside(loc: tuple[str | int, ...], value: str, roots: Sequence[Path]) -> None:
    if "\x00" in value or not os.path.isabs(value):
        raise ConfigError(loc, "must be an absolute path (the worker's folder is not the caller's)")
    real = Path(os.path.realpath(value))  # symlinks resolved: a link inside a root cannot lead out of it
    if not any(real == root or real.is_relative_to(root) for root in roots):
        raise ConfigError(loc, f"must be inside one of the training roots ({', '.join(map(str, roots))})")


def _plain_relative(loc: tuple[str | int, ...], value: str) -> None:
    # Folder and file names under data_root: joined to it, so they must not be absolute or climb out.
    path = PurePosixPath(value)
    if "\x00" in value or "\\" in value or path.is_absolute() or ".." in path.parts:
        raise ConfigError(loc, "must be a relative name under data.data_root (no '..', not absolute)")
