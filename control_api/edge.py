"""What is refused at the edge, before a route runs or a byte of its body is read.

Pure functions over the ASGI scope (unit-tested directly) and a capped `receive`; the audit middleware
applies them. The rules:

- a NUL byte in the path or the query is a 400 (PostgreSQL cannot store NUL in text, SQLite paths
  cannot hold it: left to the routes, it became a 500);
- a body larger than its route's limit is a 413, whether declared (Content-Length) or chunked;
- a mutating request outside /auth/ must carry a valid access token, and an upload one of a role that
  may upload, before its body is read: an anonymous client cannot make the server store anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from control_api.security import TokenError, decode_token, role_allows
from voiceflow_edge.servers import BODY_IDLE_S

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes that read their own credentials from the body (or need none).
PUBLIC_PREFIXES = ("/auth/",)
# Upload routes: (method, path) -> the role that may send a body there. The route declares the same role
# for its handler; here it is checked before the body is read.
UPLOAD_ROUTES = {("POST", "/api/inference/batch"): "operator"}
# Every other route takes a small JSON body.
MAX_JSON_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class EdgePolicy:
    upload_body_bytes: int  # the largest body an upload route may receive (all its files, and slack)
    jwt_secret: str
    jwt_algorithm: str


def has_nul(path: str, query_string: bytes) -> bool:
    """True when the decoded path or the percent-decoded query holds a NUL byte."""
    return "\x00" in path or b"\x00" in unquote_to_bytes(query_string)


def body_limit(method: str, path: str, policy: EdgePolicy) -> int:
    return policy.upload_body_bytes if (method, path.rstrip("/")) in UPLOAD_ROUTES else MAX_JSON_BODY_BYTES


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            # ASCII digits (bytes.isdigit) and a sane length: int() refuses more than 4300 digits.
            return int(value) if value.isdigit() and len(value) <= 18 else None
    return None


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def check_request(scope: Scope, policy: EdgePolicy) -> Refusal | None:
    """The refusal of a request from its head alone, or None to let it through."""
    method, path = scope.get("method", ""), scope.get("path", "")
    if has_nul(path, scope.get("query_string", b"")):
        return Refusal(400, "NUL bytes are not allowed in the path or the query")
    headers = list(scope.get("headers") or ())
    limit = body_limit(method, path, policy)
    declared = declared_length(headers)
    if declared is not None and declared > limit:
        return Refusal(413, f"request body larger than {limit} bytes")
    if method not in MUTATING or path.startswith(PUBLIC_PREFIXES):
        return None
    return _check_token(bearer_token(headers), UPLOAD_ROUTES.get((method, path.rstrip("/"))), policy)


def _check_token(token: str | None, role: str | None, policy: EdgePolicy) -> Refusal | None:
    challenge = {"WWW-Authenticate": "Bearer"}
    if token is None:
        return Refusal(401, "missing bearer token", challenge)
    try:
        claims = decode_token(token, secret=policy.jwt_secret, expected_type="access", algorithm=policy.jwt_algorithm)
    except TokenError as exc:
        return Refusal(401, str(exc), challenge)
    if role is not None and not role_allows(claims.role, role):
        return Refusal(403, f"requires the {role} role (you are {claims.role})")
    return None


def capped_receive(receive: Receive, limit: int, idle_s: float = BODY_IDLE_S) -> Receive:
    """`receive` that answers 413 once more than `limit` body bytes arrived (chunked bodies have no
    Content-Length to refuse up front, so they are counted as they come), and 408 when the body stops
    arriving for `idle_s` (a trickling upload would hold its connection and staging file forever)."""
    received = 0
    body_done = False

    async def wrapped() -> Message:
        nonlocal received, body_done
        if body_done:  # later calls wait for a disconnect, as long as the response takes
            return await receive()
        try:
            message = await asyncio.wait_for(receive(), idle_s)
        except TimeoutError:
            raise HTTPException(status_code=408, detail=f"request body stalled for {idle_s:.0f} s") from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_done = True
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(status_code=413, detail=f"request body larger than {limit} bytes")
        return message

    return wrapped


def close_when_body_refused(send: Send) -> Send:
    """`send` that adds Connection: close to a 408 or 413: the rest of that body is never read, so the
    client must stop sending it (kept alive, the server would drain it to reuse the connection)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] in (408, 413):
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return wrapped


def printable(value: object, limit: int) -> str:
    """A value safe to store as text anywhere (no NUL), cut to `limit` characters."""
    return str(value).replace("\x00", "\\x00")[:limit]
