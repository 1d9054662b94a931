"""FastAPI dependencies: the app context, a database session, the authenticated and rate-limited caller."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from control_api.context import AppContext
from control_api.db import session_scope
from control_api.ratelimit import RateDecision
from control_api.security import TokenClaims, TokenError, TokenType, decode_token, role_allows

log = logging.getLogger(__name__)
bearer = HTTPBearer(auto_error=False, description="access token from POST /auth/login")


@dataclass(frozen=True)
class Caller:
    username: str
    role: str


# Dependencies that do no I/O are `async def`: FastAPI runs sync ones in the thread pool, and those
# hops are a visible share of a GET's cost.
async def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_session(ctx: CtxDep) -> Iterator[Session]:
    """A session committed after the handler returns, rolled back if it raises."""
    with session_scope(ctx.sessions) as session:
        yield session


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def enforce_rate_limit(ctx: AppContext, key: str, response: Response | None) -> None:
    try:
        decision = ctx.limiter.hit(key)
    except Exception as exc:
        # Fail open: losing Redis must not take the whole control plane down (/ready reports it).
        log.warning("rate limiter unavailable, request allowed: %s", exc)
        return
    headers = rate_headers(decision)
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, round(decision.reset_after_s + 0.5)))
        raise HTTPException(status_code=429, detail="rate limit exceeded; retry later", headers=headers)
    if response is not None:
        response.headers.update(headers)


def rate_headers(decision: RateDecision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(round(decision.reset_after_s, 3)),
    }


def current_caller(
    request: Request,
    response: Response,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ctx: CtxDep,
) -> Caller:
    """The caller named by a valid access token, counted against their rate limit.

    Tokens are trusted without a database lookup (they live `access_token_ttl_s`, 15 min by default),
    which keeps reads to one Redis round trip of overhead.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("missing bearer token")
    claims = authenticate(ctx, request, credentials.credentials, "access", response)
    return Caller(claims.username, claims.role)


def authenticate(
    ctx: AppContext, request: Request, token: str, token_type: TokenType, response: Response | None
) -> TokenClaims:
    """The claims of a valid `token_type` token (else 401), named in the audit log and rate-limited."""
    try:
        claims = decode_token(
            token, secret=ctx.jwt_secret, expected_type=token_type, algorithm=ctx.settings.jwt_algorithm
        )
    except TokenError as exc:
        raise unauthorized(str(exc)) from exc
    request.state.username = claims.username  # for the audit log
    enforce_rate_limit(ctx, f"user:{claims.username}", response)
    return claims


def require_role(role: str) -> Callable[..., Awaitable[Caller]]:
    async def dependency(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if not role_allows(caller.role, role):
            raise HTTPException(status_code=403, detail=f"requires the {role} role (you are {caller.role})")
        return caller

    return dependency


SessionDep = Annotated[Session, Depends(get_session)]
Viewer = Annotated[Caller, Depends(require_role("viewer"))]
Operator = Annotated[Caller, Depends(require_role("operator"))]
Admin = Annotated[Caller, Depends(require_role("admin"))]
