"""The audit trail: one row per mutating request (who, what, when, outcome), written after it answers."""

from __future__ import annotations

import logging

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_api import edge
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


def _text(value: object, limit: int) -> str | None:
    # A hostile value (a NUL in a login name or a path) must not cost the row that records it.
    return None if value is None else edge.printable(value, limit)


def record(factory: sessionmaker[Session], entry: AuditEntry) -> None:
    with session_scope(factory) as session:
        session.add(entry)


class AuditAndLimitMiddleware:
    """Applies the edge's refusals (`control_api.edge`: NUL bytes, body limits, a token before the body)
    and writes the audit row of every mutating request.

    A plain ASGI middleware rather than `@app.middleware("http")`: the latter's streaming wrapper
    costs more per request than the whole of a GET /api/models.
    """

    def __init__(self, app: ASGIApp, *, factory: sessionmaker[Session], policy: edge.EdgePolicy) -> None:
        self.app, self.factory, self.policy = app, factory, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = edge.check_request(scope, self.policy)
        if refusal is not None:
            # Refused before a byte of the body is read; per-file limits are checked again while storing.
            # Connection: close, so a client still sending a body (300 MB, chunked) is cut off rather than
            # drained by the server to keep the connection alive.
            headers = {**(refusal.headers or {}), "Connection": "close"}
            response = JSONResponse({"detail": refusal.detail}, status_code=refusal.status, headers=headers)
            await response(scope, receive, send)
            if scope.get("method") in MUTATING:
                await self._audit(scope, refusal.status)  # who is unknown: refused before authentication
            return
        receive = edge.capped_receive(receive, edge.body_limit(scope["method"], scope["path"], self.policy))
        send = edge.close_when_body_refused(send)
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
            username=_text((scope.get("state") or {}).get("username"), 64),
            action=edge.printable(action_of(scope), 128),
            target=_text(target_of(scope), 255),
            status_code=status,
            outcome=outcome_of(status),
            client=client[0] if client else None,
        )
        try:
            await run_in_threadpool(record, self.factory, entry)
        except Exception:  # the answer is already decided; a lost audit row is logged loudly
            log.exception("could not write the audit entry for %s", entry.action)
