"""The systems the suite compares, named on the command line.

Built in:
- `default`: the engine as it ships (served embedding model, default config, count not given);
- `naive-oracle`: VAD -> 1.6 s windows every 0.4 s -> plain average linkage given the TRUE count;
- `naive-tuned`: the same naive pipeline cut at a cosine-distance threshold chosen by k-fold
  cross-validation (never on the fold it is reported on).
Any other: `NAME=KEY=VALUE,KEY=VALUE...`, the engine with overrides. KEY is a dotted path into the
engine config (`offline.clustering.algorithm=nme-sc`, `offline.clustering.threshold=0.8`,
`pipeline=embedding-overlap`, `streaming.clustering.threshold=0.7`), or one of: `model=PATH`
(another embedding model), `base=NAME` (start from another built-in's settings).
Values are YAML scalars; every key and value goes through the config's own validation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import yaml

from voiceflow.config import ConfigError, EngineConfig, build_dataclass

ENGINE = "engine"
NAIVE_ORACLE = "naive-oracle"
NAIVE_TUNED = "naive-tuned"
KINDS = (ENGINE, NAIVE_ORACLE, NAIVE_TUNED)


@dataclass(frozen=True)
class SystemSpec:
    name: str
    kind: str = ENGINE
    overrides: tuple[tuple[str, str], ...] = ()  # (dotted engine-config path, YAML value), in order
    model: str | None = None  # embedding model file; None: the one the engine serves now

    def engine_config(self, base: EngineConfig | None = None) -> EngineConfig:
        return apply_overrides(base or EngineConfig(), self.overrides)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "overrides": dict(self.overrides), "model": self.model}


BUILTIN = {
    "default": SystemSpec("default"),
    NAIVE_ORACLE: SystemSpec(NAIVE_ORACLE, NAIVE_ORACLE),
    NAIVE_TUNED: SystemSpec(NAIVE_TUNED, NAIVE_TUNED),
}


def parse_system(text: str) -> SystemSpec:
    """`NAME` (a built-in) or `NAME=KEY=VALUE[,KEY=VALUE...]`."""
    name, _, rest = text.partition("=")
    name = name.strip()
    if not name:
        raise ValueError(f"--system {text!r}: give NAME or NAME=KEY=VALUE,...")
    if not rest:
        if name not in BUILTIN:
            raise ValueError(f"--system {name!r}: not a built-in ({', '.join(BUILTIN)}); give NAME=KEY=VALUE,...")
        return BUILTIN[name]
    spec = SystemSpec(name)
    overrides: list[tuple[str, str]] = []
    for part in rest.split(","):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"--system {text!r}: {part!r} is not KEY=VALUE")
        if key == "model":
            spec = dataclasses.replace(spec, model=value.strip())
        elif key == "base":
            if value.strip() not in BUILTIN:
                raise ValueError(f"--system {text!r}: base must be one of {', '.join(BUILTIN)}")
            base = BUILTIN[value.strip()]
            spec = dataclasses.replace(spec, kind=base.kind, model=spec.model or base.model)
        else:
            overrides.append((key, value.strip()))
    spec = dataclasses.replace(spec, overrides=tuple(overrides))
    if spec.kind != ENGINE and spec.overrides:
        raise ValueError(f"--system {text!r}: the naive systems take no engine overrides")
    spec.engine_config()  # validate now, not an hour into a run
    return spec


def _set(obj: Any, path: list[str], raw: Any, where: str) -> Any:
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise ConfigError(f"{where}: not a settings group")
    names = {f.name: f for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in names:
        raise ConfigError(f"{where}: unknown setting {head!r} (known: {', '.join(sorted(names))})")
    current = getattr(obj, head)
    if len(path) > 1:
        value = _set(current, path[1:], raw, f"{where}.{head}")
    elif dataclasses.is_dataclass(current) and not isinstance(current, type):
        value = build_dataclass(type(current), raw, f"{where}.{head}")
    else:
        value = float(raw) if isinstance(current, float) and isinstance(raw, int) and not isinstance(raw, bool) else raw
        if current is not None and value is not None and not isinstance(value, type(current)):
            raise ConfigError(f"{where}.{head}: expected {type(current).__name__}, got {type(value).__name__}")
    try:
        return dataclasses.replace(obj, **{head: value})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}.{head}: {exc}") from exc


def apply_overrides(config: EngineConfig, overrides: tuple[tuple[str, str], ...]) -> EngineConfig:
    """`config` with each (dotted path, YAML value) applied in order, validated like a config file."""
    for key, text in overrides:
        config = _set(config, key.split("."), yaml.safe_load(text), "config")
    return config
