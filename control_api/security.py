"""Passwords (argon2id) and JWT access/refresh tokens: pure functions, no I/O."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ROLES: tuple[str, ...] = ("viewer", "operator", "admin")  # each role includes the ones before it
TokenType = Literal["access", "refresh"]

_hasher = PasswordHasher()


class TokenError(Exception):
    """The token is missing, malformed, expired, forged or of the wrong type (always a 401)."""


@dataclass(frozen=True)
class TokenClaims:
    username: str
    role: str
    token_type: TokenType
    expires_at: int


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def role_allows(role: str, required: str) -> bool:
    if role not in ROLES or required not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(required)


# Who reads a failed job's whole error (a traceback's tail, with server paths in it): those who run jobs.
FULL_ERRORS_ROLE = "operator"
MAX_SUMMARY_CHARS = 300


def error_seen_by(role: str, error: str | None) -> str | None:
    """A registry error as `role` may read it: whole for operators and admins, one line for viewers."""
    if not error or role_allows(role, FULL_ERRORS_ROLE):
        return error
    return error_summary(error)


def error_summary(error: str) -> str:
    """One line: what failed ("train exited with 1") and its last line (usually the exception)."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if not lines:
        return ""
    head, _, first_detail = lines[0].partition(": ")
    last = lines[-1] if len(lines) > 1 else first_detail
    summary = f"{head}: {last}" if last and last != head else head
    return summary[:MAX_SUMMARY_CHARS]


def issue_token(
    username: str,
    role: str,
    *,
    secret: str,
    ttl_s: int,
    token_type: TokenType = "access",
    algorithm: str = "HS256",
    now: float | None = None,
) -> str:
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": username,
        "role": role,
        "typ": token_type,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=algorithm)


def decode_token(
    token: str, *, secret: str, expected_type: TokenType = "access", algorithm: str = "HS256"
) -> TokenClaims:
    try:
        # `algorithms` pinned: a token claiming "none" or another algorithm is refused.
        claims = jwt.decode(token, secret, algorithms=[algorithm], options={"require": ["sub", "exp", "role", "typ"]})
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("invalid token") from exc
    if claims["typ"] != expected_type:
        raise TokenError(f"expected an {expected_type} token")
    if claims["role"] not in ROLES:
        raise TokenError("invalid token")
    return TokenClaims(str(claims["sub"]), str(claims["role"]), claims["typ"], int(claims["exp"]))
