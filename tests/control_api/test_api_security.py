"""Passwords, tokens and roles (pure functions)."""

from __future__ import annotations

import time

import jwt
import pytest

from control_api.security import (
    TokenError,
    decode_token,
    hash_password,
    issue_token,
    role_allows,
    verify_password,
)

SECRET = "s" * 40


def test_argon2_hash_verifies_only_the_right_password() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong horse")
    assert not verify_password("not-a-hash", "correct horse")


def test_token_round_trip_carries_user_and_role() -> None:
    claims = decode_token(issue_token("ann", "operator", secret=SECRET, ttl_s=60), secret=SECRET)
    assert (claims.username, claims.role, claims.token_type) == ("ann", "operator", "access")


def test_expired_token_is_refused() -> None:
    token = issue_token("ann", "admin", secret=SECRET, ttl_s=10, now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        decode_token(token, secret=SECRET)


def test_token_signed_with_another_key_is_refused() -> None:
    token = issue_token("ann", "admin", secret="another-key-" + "k" * 32, ttl_s=60)
    with pytest.raises(TokenError, match="invalid"):
        decode_token(token, secret=SECRET)


def test_unsigned_alg_none_token_is_refused() -> None:
    token = jwt.encode(
        {"sub": "ann", "role": "admin", "typ": "access", "exp": int(time.time()) + 60},
        key=None,
        algorithm="none",
    )
    with pytest.raises(TokenError):
        decode_token(token, secret=SECRET)


def test_refresh_token_is_not_an_access_token() -> None:
    token = issue_token("ann", "viewer", secret=SECRET, ttl_s=60, token_type="refresh")
    with pytest.raises(TokenError, match="access"):
        decode_token(token, secret=SECRET)
    assert decode_token(token, secret=SECRET, expected_type="refresh").username == "ann"


def test_unknown_role_in_a_signed_token_is_refused() -> None:
    with pytest.raises(TokenError):
        decode_token(issue_token("ann", "root", secret=SECRET, ttl_s=60), secret=SECRET)


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        ("viewer", "viewer", True),
        ("viewer", "operator", False),
        ("operator", "viewer", True),
        ("operator", "admin", False),
        ("admin", "operator", True),
        ("nobody", "viewer", False),
    ],
)
def test_roles_are_ordered(role: str, required: str, allowed: bool) -> None:
    assert role_allows(role, required) is allowed
