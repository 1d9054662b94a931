"""What one pydantic validation error says, in words a user who wrote the setting can act on, and
the checks of duration and window settings the engine's config dataclasses share.

Shared by the engine's config files (voiceflow.config) and the services' `VOICEFLOW_*` settings
(voiceflow_edge.settings), which name the setting each in their own way. Imports pydantic only.
"""

from __future__ import annotations

from pydantic_core import ErrorDetails


def error_message(error: ErrorDetails) -> str:
    """'unknown setting' for a key the model does not have, a validator's own message for the
    value it refused (not pydantic's "Value error, ..." wrapping), else pydantic's message."""
    if error["type"] == "extra_forbidden":
        return "unknown setting"
    if error["type"] == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    return error["msg"]


MAX_SETTING_SECONDS = 10.0


def require_seconds(config: object, *names: str) -> None:
    """Each of `config`'s fields `names` is a duration within 0..MAX_SETTING_SECONDS: NaN or inf
    fails every recording later, and a huge pause, padding or minimum makes all of a recording one
    thing (all speech, no speech, no speaker). A ValueError naming the first that is not."""
    for name in names:
        if not 0.0 <= getattr(config, name) <= MAX_SETTING_SECONDS:
            raise ValueError(f"{name} must be within 0..{MAX_SETTING_SECONDS:g} seconds")


MIN_WINDOW_SECONDS = 0.5


def require_windows(
    window_seconds: float, step_seconds: float, min_window_speech: float, *, min_step_seconds: float
) -> None:
    """The window settings of a pipeline that embeds speech in sliding windows (offline or live): a
    window of MIN_WINDOW_SECONDS..MAX_SETTING_SECONDS, a step from `min_step_seconds` (the
    pipeline's own resolution) up to the window, and a speech fraction within 0..1: above 1 no window
    is ever embedded and every recording ends with no speaker at all. A ValueError naming the first
    that is not."""
    if not MIN_WINDOW_SECONDS <= window_seconds <= MAX_SETTING_SECONDS:
        raise ValueError(f"window_seconds must be within {MIN_WINDOW_SECONDS:g}..{MAX_SETTING_SECONDS:g}")
    if not min_step_seconds <= step_seconds <= window_seconds:
        raise ValueError(f"step_seconds must be within {min_step_seconds:g}..window_seconds")
    if not 0.0 <= min_window_speech <= 1.0:
        raise ValueError("min_window_speech must be a fraction in 0..1")
