"""Engine settings from YAML/JSON files: strict (unknown keys, wrong types and bounds are errors).

Layout:
    offline:   {window_seconds, step_seconds, min_window_speech, min_turn_seconds,
                vad: {...}, clustering: {...}}
    streaming: {window_seconds, step_seconds, embedding_hops, min_window_speech, vad: {...},
                clustering: {...}}
    pipeline:  a name in voiceflow.registry.PIPELINES (which pipeline both modes run)
    segmentation:
      model: PATH (default: the bundled voiceflow/models/segmentation.onnx)
      overlap_model: PATH (embedding-overlap's detector; default: bundled overlap.onnx, else model)
      offline:   {step_seconds, min_on_seconds, min_off_seconds, local: {...}, clustering: {...}}
      streaming: {step_seconds, latency_seconds, local: {...}, clustering: {...}}
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic_core import ErrorDetails

from voiceflow.clustering.offline import OfflineClusteringConfig
from voiceflow.clustering.online import OnlineClusteringConfig
from voiceflow.pipeline import DiarizationConfig
from voiceflow.registry import DEFAULT_PIPELINE, PIPELINES, uses_segmentation_model
from voiceflow.segmentation.offline import SegmentationPipelineConfig
from voiceflow.segmentation.streaming import SegmentationStreamingConfig
from voiceflow.streaming import StreamingConfig
from voiceflow.vad import VADConfig
from voiceflow.validation import error_message

MAX_CONFIG_BYTES = 256 * 1024


class ConfigError(ValueError):
    pass


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
    """Frozen dataclass `cls` from a mapping of its settings, nested groups included, validated strictly:
    unknown keys, wrong types and out-of-bounds values are a `ConfigError` naming each setting."""
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, where)) from None


@functools.cache
def _adapter(cls: type) -> TypeAdapter[Any]:
    return TypeAdapter(_settings_model(cls))


@functools.cache
def _settings_model(cls: type) -> Any:
    """A strict pydantic model of dataclass `cls` whose validated value is a `cls` instance.

    Generated from the dataclass so each setting keeps one definition (name, type, default and the
    bounds its `__post_init__` checks); the model adds the file-facing strictness. A setting the file
    leaves out is not passed on, so the dataclass's own default applies.
    """
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {
        f.name: (_settings_model(hints[f.name]) if dataclasses.is_dataclass(hints[f.name]) else hints[f.name], None)
        for f in dataclasses.fields(cls)
        if f.init
    }
    model = create_model(cls.__name__, __config__=_STRICT, **fields)

    def build(values: BaseModel) -> Any:
        # A bound check in __post_init__ raises ValueError: pydantic reports it at this group's path.
        return cls(**{name: getattr(values, name) for name in values.model_fields_set})

    return Annotated[model, AfterValidator(build)]


# Strict: a boolean or a string is no number and a float no integer (an integer is a float, though),
# so a typo in a file is an error rather than a silent conversion.
_STRICT = ConfigDict(strict=True, extra="forbid")
# A hostile file can hold thousands of bad keys; the first few say what is wrong.
MAX_REPORTED_ERRORS = 5


def _describe_errors(exc: ValidationError, where: str) -> str:
    """One line naming each bad setting by its dotted path under `where` (the file or "config")."""
    problems = [_describe(error, where) for error in exc.errors(include_url=False)]
    more = len(problems) - MAX_REPORTED_ERRORS
    return "; ".join(problems[:MAX_REPORTED_ERRORS]) + (f"; and {more} more" if more > 0 else "")


def _describe(error: ErrorDetails, where: str) -> str:
    path = ".".join([where, *map(str, error["loc"])])
    got = type(error["input"]).__name__
    if error["type"] == "model_type":
        return f"{path}: expected a mapping of settings, got {got}"
    if error["type"] in ("extra_forbidden", "value_error"):
        return f"{path}: {error_message(error)}"
    return f"{path}: {error_message(error)}, got {got}"


def parse_engine_config(data: Any, source: str = "config") -> EngineConfig:
    if data is None:
        return EngineConfig()
    config: EngineConfig = build_dataclass(EngineConfig, data, source)
    return config


def read_config_file(path: str | Path) -> Any:
    """The settings a config file holds (YAML, or JSON by its suffix), unvalidated; ConfigError when
    it is missing, too large, not UTF-8 or not parseable."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})") from exc


def load_engine_config(path: str | Path, pipeline: str | None = None) -> EngineConfig:
    """The engine config in the file at `path`. With `pipeline` (a service whose pipeline is its own
    setting) that pipeline is selected and a file that names one is refused, rather than one of the
    two silently losing."""
    data = read_config_file(path)
    if pipeline is None:
        return parse_engine_config(data, str(path))
    if isinstance(data, dict) and "pipeline" in data:
        raise ConfigError(f"{path}: pipeline: set by the service's own pipeline setting, not in its engine config")
    return dataclasses.replace(parse_engine_config(data, str(path)), pipeline=pipeline)


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
    "read_config_file",
    "uses_segmentation_model",
]
