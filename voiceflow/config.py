"""Engine settings from YAML/JSON files: strict (unknown keys, wrong types and bounds are errors).

Layout:
    offline:   {window_seconds, step_seconds, min_window_speech, min_turn_seconds,
                vad: {...}, clustering: {...}}
    streaming: {window_seconds, step_seconds, min_window_speech, vad: {...}, clustering: {...}}
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from voiceflow.clustering.offline import OfflineClusteringConfig
from voiceflow.clustering.online import OnlineClusteringConfig
from voiceflow.pipeline import DiarizationConfig
from voiceflow.streaming import StreamingConfig
from voiceflow.vad import VADConfig

MAX_CONFIG_BYTES = 256 * 1024


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class EngineConfig:
    offline: DiarizationConfig = field(default_factory=DiarizationConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)


def build_dataclass(cls: type, data: Any, where: str) -> Any:
    """Construct frozen dataclass `cls` from a mapping, recursing into nested dataclass fields."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(map(str, unknown))}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = build_dataclass(hint, value, f"{where}.{key}")  # type: ignore[arg-type]
        else:
            kwargs[key] = _coerce(value, hint, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _coerce(value: Any, hint: Any, where: str) -> Any:
    allowed = typing.get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool) and bool not in allowed:
        raise ConfigError(f"{where}: expected {hint}, got a boolean")
    if float in allowed and isinstance(value, int | float):
        return float(value)
    for kind in allowed:
        if isinstance(kind, type) and isinstance(value, kind):
            return value
    raise ConfigError(f"{where}: expected {hint}, got {type(value).__name__}")


def parse_engine_config(data: Any, source: str = "config") -> EngineConfig:
    if data is None:
        return EngineConfig()
    config: EngineConfig = build_dataclass(EngineConfig, data, source)
    return config


def load_engine_config(path: str | Path) -> EngineConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file larger than {MAX_CONFIG_BYTES} bytes")
    text = path.read_text(encoding="utf-8", errors="strict")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})") from exc
    return parse_engine_config(data, str(path))


__all__ = [
    "ConfigError",
    "EngineConfig",
    "OfflineClusteringConfig",
    "OnlineClusteringConfig",
    "VADConfig",
    "load_engine_config",
    "parse_engine_config",
]
