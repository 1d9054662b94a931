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


def extract_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    token = query.get("token")
    return token or None


def verify_token(token: str | None, key: str, algorithms: Sequence[str], audience: str | None = None) -> dict[str, Any]:
    """Claims of a valid token, or AuthError. `exp` is enforced whenever present."""
    if not token:
        raise AuthError("a bearer token is required (Authorization header or token query parameter)")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            audience=audience,
            options={"require": [], "verify_aud": audience is not None},
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
