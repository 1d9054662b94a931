from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, HTTPException, Request

from control_api import users
from control_api.deps import CtxDep, SessionDep, authenticate, enforce_rate_limit, unauthorized
from control_api.login_guard import guard_key
from control_api.schemas import ErrorResponse, LoginRequest, RefreshRequest, TokenResponse
from control_api.security import issue_token

log = logging.getLogger(__name__)
T = TypeVar("T")
router = APIRouter(prefix="/auth", tags=["auth"])
RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "malformed request body"},
    401: {"model": ErrorResponse, "description": "wrong credentials or invalid refresh token"},
    422: {"model": ErrorResponse, "description": "invalid request"},
    429: {"model": ErrorResponse, "description": "too many attempts"},
}


def _tokens(ctx: CtxDep, username: str, role: str) -> TokenResponse:
    settings = ctx.settings
    secret, algorithm = ctx.jwt_secret, settings.jwt_algorithm
    return TokenResponse(
        access_token=issue_token(
            username,
            role,
            ttl_s=settings.access_token_ttl_s,
            token_type="access",
            secret=secret,
            algorithm=algorithm,
        ),
        refresh_token=issue_token(
            username,
            role,
            ttl_s=settings.refresh_token_ttl_s,
            token_type="refresh",
            secret=secret,
            algorithm=algorithm,
        ),
        expires_in=settings.access_token_ttl_s,
        role=role,  # type: ignore[arg-type]
    )


@router.post("/login", response_model=TokenResponse, responses=RESPONSES)
def login(body: LoginRequest, request: Request, ctx: CtxDep, session: SessionDep) -> TokenResponse:
    """Exchange a username and password for an access token (and a refresh token)."""
    request.state.username = body.username  # audit who tried, whatever the outcome
    # Requests are limited per client address; wrong passwords per (client, account) with a growing wait
    # (control_api.login_guard): a guesser elsewhere cannot lock the account's owner out.
    client = request.client.host if request.client else "unknown"
    enforce_rate_limit(ctx, f"login-ip:{client}", None)
    if "\x00" in body.username:
        # No account can hold it, and PostgreSQL cannot even compare it: a 422 here, not a 500 below.
        raise HTTPException(status_code=422, detail="username must not contain NUL bytes")
    key = guard_key(client, body.username)
    wait = _guarded(lambda: ctx.login_guard.retry_after(key), 0.0)
    if wait > 0:
        raise HTTPException(
            status_code=429,
            detail="too many wrong passwords from this address for this account; retry later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    user = users.authenticate(session, body.username, body.password)
    if user is None:
        _guarded(lambda: ctx.login_guard.failed(key), 0.0)
        raise unauthorized("wrong username or password")
    _guarded(lambda: ctx.login_guard.succeeded(key), None)
    return _tokens(ctx, user.username, user.role)


def _guarded(call: Callable[[], T], fallback: T) -> T:
    # Fail open, like the rate limiter: losing Redis must not stop every login (/ready reports it).
    try:
        return call()
    except Exception as exc:
        log.warning("login guard unavailable, attempt allowed: %s", exc)
        return fallback


@router.post("/refresh", response_model=TokenResponse, responses=RESPONSES)
def refresh(body: RefreshRequest, request: Request, ctx: CtxDep, session: SessionDep) -> TokenResponse:
    """A new token pair from a refresh token; the account's current role is used, and must still exist."""
    claims = authenticate(ctx, request, body.refresh_token, "refresh", None)
    user = users.find_user(session, claims.username)
    if user is None:
        raise unauthorized("account no longer exists")
    return _tokens(ctx, user.username, user.role)
