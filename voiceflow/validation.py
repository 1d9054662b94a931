"""What one pydantic validation error says, in words a user who wrote the setting can act on.

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
