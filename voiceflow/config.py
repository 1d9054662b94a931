"""Engine settings from YAML/JSON files: strict (unknown keys, wrong types and bounds are errors).

Layout:
    offline:   {window_seconds, step_seconds, min_window_speech, min_turn_seconds,
                vad: {...}, clustering: {...}}
    streaming: {window_seconds, step_seconds, min_window_speech, vad: {...}, clustering: {...}}
    pipeline:  embedding | segmentation   (which pipeline both modes run; see voiceflow.selection)
    segmentation:
      model: PATH (default: the bundled voiceflow/models/segmentation.onnx)
      overlap_model: PATH (embedding-overlap's detector; default: bundled overlap.onnx, else model)
      offline:   {step_seconds, min_on_seconds, min_off_seconds, local: {...}, clustering: {...}}
      streaming: {step_seconds, latency_seconds, local: {...}, clustering: {...}}
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
from voiceflow.segmentation.offline import SegmentationPipelineConfig
from voiceflow.segmentation.streaming import SegmentationStreamingConfig
from voiceflow.streaming import StreamingConfig
from voiceflow.vad import VADConfig

MAX_CONFIG_BYTES = 256 * 1024


class ConfigError(ValueError):
    pass


# "embedding": VAD + window embeddings + clustering (one speaker per moment).
# "segmentation": our segmentation network + local-speaker embeddings (overlap-aware).
# "embedding-overlap": the embedding pipeline plus the segmentation network as an overlap
#   detector (a second speaker where it hears two), offline and streaming.
PIPELINES = ("embedding", "segmentation", "embedding-overlap")
# The pipeline that won the dev-set gate (docs/segmentation.md has the table it was chosen by).
DEFAULT_PIPELINE = "embedding"


def uses_segmentation_model(pipeline: str) -> bool:
    return pipeline in ("segmentation", "embedding-overlap")


@dataclass(frozen=True)
class SegmentationSettings:
    model: str | None = None  # ONNX file; None = the bundled default
    # The embedding-overlap pipeline's detector: an overlap-detector ONNX (task "count"), or any
    # segmentation network (its own speaker count); None = the bundled one.
    overlap_model: str | None = None
    offline: SegmentationPipelineConfig = field(default_factory=SegmentationPipelineConfig)
    streaming: SegmentationStreamingConfig = field(default_factory=SegmentationStreamingConfig)


@dataclass(frozen=True)
class EngineConfig:
    offline: DiarizationConfig = field(default_factory=DiarizationConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    pipeline: str = DEFAULT_PIPELINE
    segmentation: SegmentationSettings = field(default_factory=SegmentationSettings)

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {', '.join(PIPELINES)}, not {self.pipeline!r}")


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
    "DEFAULT_PIPELINE",
    "PIPELINES",
    "ConfigError",
    "EngineConfig",
    "OfflineClusteringConfig",
    "OnlineClusteringConfig",
    "VADConfig",
    "load_engine_config",
    "parse_engine_config",
    "uses_segmentation_model",
]
