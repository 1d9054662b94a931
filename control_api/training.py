"""What a train request becomes: the seed's body mapped onto the backend's config, checked at request time.

The seed documents `{"dataset_path", "version", "hyperparameters": {"learning_rate", "batch_size",
"epochs"}}`; the registry's own form is `{"name", "config"}`. Both end as one config for the backend:
the embedded worker runs `voiceflow train --config`, so its config is checked against the trainer's
own schema (pipelines.training.config, the one definition of it); in-cluster the operator reads the
CRD's `spec.training`, which `k8s.training_spec` checks. A bad key is refused here, naming its path,
rather than failing minutes later inside the job.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from control_api.schemas import TrainRequest
from pipelines.training.config import TrainConfig, config_from_dict

# The modules `voiceflow train` / `voiceflow export` import that only the `train` extra installs.
TRAIN_EXTRA_MODULES = ("torch", "onnx")
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://")


class ConfigError(ValueError):
    """A train request the backend cannot take; `loc` is the offending key's path in the request body."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {message}")
        self.loc, self.message = loc, message

    def as_detail(self) -> list[dict[str, Any]]:
        """FastAPI's own 422 shape, so a client reads every validation error the same way."""
        return [{"loc": ["body", *self.loc], "msg": self.message, "type": "value_error"}]


class MissingExtra(RuntimeError):
    """This server cannot run the work: the install lacks an optional dependency group (a 503)."""


def missing_modules(modules: tuple[str, ...] = TRAIN_EXTRA_MODULES) -> list[str]:
    def importable(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package that fails to import, or a broken spec
            return False

    return [name for name in modules if not importable(name)]


def check_train_extra(command_template: str) -> None:
    """The embedded worker runs the trainer with this interpreter (`{python}`): it needs the train extra."""
    if "{python}" not in command_template:
        return  # an external trainer brings its own dependencies
    missing = missing_modules()
    if missing:
        raise MissingExtra(
            f"training is not available on this server: the 'train' extra is not installed "
            f"({', '.join(missing)} missing). Install it with pip install 'voiceflow[train]' "
            f"(the compose image does), or run the registry in-cluster where the operator trains"
        )


def resolve_config(body: TrainRequest, mode: str) -> dict[str, Any]:
    """The config to store and hand to the backend `mode` ("embedded" or "kubernetes"); raises ConfigError."""
    if mode == "kubernetes":
        return _cluster_config(body)
    config = dict(body.config)
    seed = _seed_values(body)
    for key, (loc, value) in seed.items():
        path = key.split(".")
        if _get(config, path) is not None:
            raise ConfigError(loc, f"also given as config.{key}; set it once")
        _set(config, path, value)
    return validate_train_config(config)


def _seed_values(body: TrainRequest) -> dict[str, tuple[tuple[str, ...], Any]]:
    """The seed's fields as trainer config keys (dotted), each with where it came from."""
    values: dict[str, tuple[tuple[str, ...], Any]] = {}
    if body.dataset_path is not None:
        values["data.data_root"] = (("dataset_path",), body.dataset_path)
    hyper = body.hyperparameters
    if hyper is not None:
        for seed_key, key in (("learning_rate", "lr"), ("batch_size", "batch_size"), ("epochs", "epochs")):
            value = getattr(hyper, seed_key)
            if value is not None:
                values[key] = (("hyperparameters", seed_key), value)
    return values


def _cluster_config(body: TrainRequest) -> dict[str, Any]:
    config = dict(body.config)
    if body.dataset_path is not None:
        if "dataset" in config:
            raise ConfigError(("dataset_path",), "also given as config.dataset; set it once")
        path = body.dataset_path
        config["dataset"] = path if _URI.match(path) else f"file://{path}"
    hyper = body.hyperparameters
    if hyper is not None:
        given = config.get("hyperparameters") or {}
        if not isinstance(given, dict):
            raise ConfigError(("config", "hyperparameters"), "must be an object")
        nested = dict(given)
        for seed_key, key in (("learning_rate", "learningRate"), ("batch_size", "batchSize"), ("epochs", "epochs")):
            value = getattr(hyper, seed_key)
            if value is None:
                continue
            if key in nested or key in config:
                raise ConfigError(("hyperparameters", seed_key), f"also given as config {key}; set it once")
            nested[key] = value
        if nested:
            config["hyperparameters"] = nested
    return config


def validate_train_config(config: dict[str, Any]) -> dict[str, Any]:
    """`config` checked against the trainer's TrainConfig: every key known, every value of its type.

    Returns only the keys given (values normalised to their types), so the registry shows what the user
    asked for rather than every default.
    """
    try:
        checked = _schema(TrainConfig).model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(("config", *first["loc"]), first["msg"]) from exc
    values: dict[str, Any] = checked.model_dump(mode="json", exclude_unset=True)
    try:
        config_from_dict(values)  # the dataclasses' own cross-field checks (__post_init__)
    except (ValueError, TypeError) as exc:
        # Their messages start with the key's dotted path, e.g. "data.sampling must be one of ...".
        field_path = str(exc).split(" ", 1)[0]
        loc = tuple(field_path.split(".")) if "." in field_path else ()
        raise ConfigError(("config", *loc), str(exc)) from exc
    return values


_SCHEMAS: dict[type[Any], type[BaseModel]] = {}


def _schema(cls: type[Any]) -> type[BaseModel]:
    """A pydantic model mirroring dataclass `cls` (nested dataclasses too), unknown keys refused."""
    if cls in _SCHEMAS:
        return _SCHEMAS[cls]
    hints = get_type_hints(cls)
    defaults = cls()
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        nested = dataclasses.is_dataclass(value) and not isinstance(value, type)
        annotation = _schema(type(value)) if nested else hints[f.name]
        fields[f.name] = (annotation, None)
    model: type[BaseModel] = create_model(f"{cls.__name__}Schema", __config__=ConfigDict(extra="forbid"), **fields)
    _SCHEMAS[cls] = model
    return model


def _get(mapping: dict[str, Any], path: list[str]) -> Any:
    for key in path:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)  # type: ignore[assignment]
    return mapping


def _set(mapping: dict[str, Any], path: list[str], value: Any) -> None:
    for depth, key in enumerate(path[:-1]):
        inner = mapping.get(key, {})
        if not isinstance(inner, dict):  # never silently replace what the caller wrote
            raise ConfigError(("config", *path[: depth + 1]), "must be an object")
        mapping[key] = inner = dict(inner)
        mapping = inner
    mapping[path[-1]] = value
