"""The audit trail: one row per mutating request (who, what, when, outcome), written after it answers."""

from __future__ import annotations

import logging

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_api.db import session_scope
from control_api.models import AuditEntry, utcnow

log = logging.getLogger(__name__)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def outcome_of(status_code: int) -> str:
    if status_code < 400:
        return "success"
    if status_code in (401, 403, 429):
        return "denied"
    return "rejected" if status_code < 500 else "error"


def action_of(scope: Scope) -> str:
    # The route template ("/api/models/{model_id}/export"), not the raw path, so actions group.
    route = scope.get("route")
    path = getattr(route, "path", None) or scope.get("path", "")
    return f"{scope.get('method', '')} {path}"[:128]


def target_of(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    explicit = state.get("audit_target")
    if explicit:
        return str(explicit)[:255]
    params = scope.get("path_params") or {}
    return ",".join(f"{k}={v}" for k, v in params.items())[:255] or None


def record(factory: sessionmaker[Session], entry: AuditEntry) -> None:
    with session_scope(factory) as session:
        session.add(entry)


class AuditAndLimitMiddleware:
    """Refuses oversized bodies up front and writes the audit row of every mutating request.

    A plain ASGI middleware rather than `@app.middleware("http")`: the latter's streaming wrapper
    costs more per request than the whole of a GET /api/models.
    """

    def __init__(self, app: ASGIApp, *, factory: sessionmaker[Session], max_body_bytes: int) -> None:
        self.app, self.factory, self.max_body_bytes = app, factory, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            # Refused before a byte of the body is read; per-file limits are checked again while storing.
            response = JSONResponse(
                {"detail": f"request body larger than {self.max_body_bytes} bytes"}, status_code=413
            )
            await response(scope, receive, send)
            if scope.get("method") in MUTATING:
                await self._audit(scope, 413)  # who is unknown: refused before authentication
            return
        if scope.get("method") not in MUTATING:
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            await self._audit(scope, status)

    async def _audit(self, scope: Scope, status: int) -> None:
        client = scope.get("client")
        entry = AuditEntry(
            at=utcnow(),
            username=(scope.get("state") or {}).get("username"),
            action=action_of(scope),
            target=target_of(scope),
            status_code=status,
            outcome=outcome_of(status),
            client=client[0] if client else None,
        )
        try:
            await run_in_threadpool(record, self.factory, entry)
        except Exception:  # the answer is already decided; a lost audit row is logged loudly
            log.exception("could not write the audit entry for %s", entry.action)
