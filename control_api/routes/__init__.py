"""HTTP routes: thin shells that parse, authorise, call the logic modules and shape the answer."""

from control_api.schemas import ErrorResponse

# Declared on every route so the OpenAPI schema (and schemathesis) knows the error bodies.
ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "malformed request body"},
    401: {"model": ErrorResponse, "description": "missing, expired or invalid token"},
    403: {"model": ErrorResponse, "description": "the caller's role does not allow this"},
    422: {"model": ErrorResponse, "description": "invalid request"},
    429: {"model": ErrorResponse, "description": "rate limit exceeded (see Retry-After)"},
}


def errors(*codes: int) -> dict[int | str, dict[str, object]]:
    extra = {
        404: {"model": ErrorResponse, "description": "not found"},
        409: {"model": ErrorResponse, "description": "not allowed in the current state"},
        413: {"model": ErrorResponse, "description": "too large"},
        415: {"model": ErrorResponse, "description": "unsupported media type"},
        502: {"model": ErrorResponse, "description": "the registry backend (Kubernetes API, model store) failed"},
        503: {"model": ErrorResponse, "description": "this server's install cannot do it (a missing extra)"},
    }
    return {**ERRORS, **{code: extra[code] for code in codes}}
