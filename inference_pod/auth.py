"""JWT auth for `/ws/stream` and `/infer`, plus per-token connection limits.

The key is the control API's signing key; when none is configured the pod is open (local use).
Tokens come from `Authorization: Bearer ...` or a `token` query parameter (browsers cannot set
headers on a WebSocket). Verification happens before the handshake is accepted, so a refused
client never gets to send audio.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import jwt


class AuthError(Exception):
    """Missing, malformed, badly signed or expired token (one line, safe to return to the client)."""


class Forbidden(AuthError):
    """A valid token whose role may not do this (403 rather than 401)."""


# Tokens are the control API's access tokens (the pod's key is its signing key), so roles are its roles.
# A live stream is what a viewer watches; /infer is a batch job in one request, an operator's action.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"stream"}),
    "operator": frozenset({"stream", "infer"}),
    "admin": frozenset({"stream", "infer"}),
}


def extract_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    token = query.get("token")
    return token or None


def verify_token(token: str | None, key: str, algorithms: Sequence[str], audience: str | None = None) -> dict[str, Any]:
    """Claims of a valid, unexpired access token (`exp` required), or AuthError."""
    if not token:
        raise AuthError("a bearer token is required (Authorization header or token query parameter)")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            audience=audience,
            # `exp` required: a token without one would open streams forever once it leaked.
            options={"require": ["exp"], "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    if not isinstance(claims, dict):
        raise AuthError("invalid token: claims are not an object")
    # The control API also issues refresh tokens with the same key; only access tokens open streams.
    if claims.get("typ", "access") != "access":
        raise AuthError(f"token type {claims.get('typ')!r} cannot be used here (need an access token)")
    return claims


def check_permission(claims: Mapping[str, Any], action: str) -> None:
    """Forbidden unless the token's `role` may do `action` ("stream" or "infer")."""
    role = claims.get("role")
    allowed = ROLE_PERMISSIONS.get(role, frozenset()) if isinstance(role, str) else frozenset()
    if action not in allowed:
        raise Forbidden(f"role {role!r} may not {action} (allowed: {_who_may(action)})")


def _who_may(action: str) -> str:
    return ", ".join(role for role, actions in ROLE_PERMISSIONS.items() if action in actions)


def token_identity(claims: Mapping[str, Any], token: str) -> str:
    """Who a connection limit counts against: the subject, else a hash of the token itself."""
    sub = claims.get("sub")
    if isinstance(sub, str) and sub:
        return "sub:" + sub
    return "tok:" + hashlib.sha256(token.encode()).hexdigest()[:16]


class ConnectionLimiter:
    """Counts open connections per identity (event-loop only, so no lock)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def acquire(self, identity: str) -> bool:
        if self._open[identity] >= self.limit:
            return False
        self._open[identity] += 1
        return True

    def release(self, identity: str) -> None:
        self._open[identity] -= 1
        if self._open[identity] <= 0:
            del self._open[identity]

    def count(self, identity: str) -> int:
        return self._open.get(identity, 0)
