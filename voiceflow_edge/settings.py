"""Server settings from `VOICEFLOW_*` environment variables, shared by the inference pod and the Control API.

Building a settings object takes only its arguments (tests and code construct one directly, as before);
`from_env` alone reads the environment, so nothing else depends on the process's variables. A bad value
is a `SettingsError` of one line naming the variable, which the servers print instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from voiceflow.validation import error_message

ENV_PREFIX = "VOICEFLOW_"
# A hostile or mistyped value is shown, but never more of it than this.
MAX_SHOWN_CHARS = 80


class SettingsError(ValueError):
    """A setting the server cannot start with; the message names each bad one (its variable when read)."""


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A list in one variable, `A, B`: NoDecode keeps pydantic-settings from expecting JSON for it.
CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]


class EnvSettings(BaseSettings):
    """Frozen settings whose fields map to `VOICEFLOW_<FIELD>` (upper case); unknown fields are refused."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Constructor arguments only: the environment is read by `from_env`, never behind a test's back.
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Settings from the `VOICEFLOW_*` variables of `environ` (default: the process's), then `overrides`
        (a None override is "not given", so CLI flags left unset keep the environment's value)."""
        from_env = _MappingEnvSource(cls, os.environ if environ is None else environ)()
        given = {name: value for name, value in overrides.items() if value is not None}
        try:
            return cls(**{**from_env, **given})
        except ValidationError as exc:
            read = set(from_env) - set(given)
            raise SettingsError("; ".join(_describe(error, read) for error in exc.errors())) from None

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, validated like a new one (pydantic's `model_copy` does not validate)."""
        return type(self)(**{**self.__dict__, **changes})


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        fold = (lambda key: key) if self.case_sensitive else str.lower
        return {fold(k): v for k, v in self._environ.items() if not (self.env_ignore_empty and v == "")}


def _describe(error: ErrorDetails, read_from_env: set[str]) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    name = f"{ENV_PREFIX}{field.upper()}" if field in read_from_env else f"setting {field}"
    if error["type"] == "extra_forbidden":
        return f"{name}: {error_message(error)}"
    message = error_message(error)
    shown = repr(error["input"])
    if len(shown) > MAX_SHOWN_CHARS:
        shown = shown[: MAX_SHOWN_CHARS - 3] + "..."
    return f"{name}: {message} (got {shown})"
