"""The audit trail: one row per mutating request (who, what, when, outcome), written after it answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

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


def action_of(request: Request) -> str:
    # The route template ("/api/models/{model_id}/export"), not the raw path, so actions group.
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    return f"{request.method} {path}"[:128]


def target_of(request: Request) -> str | None:
    explicit = getattr(request.state, "audit_target", None)
    if explicit:
        return str(explicit)[:255]
    params = request.path_params
    return ",".join(f"{k}={v}" for k, v in params.items())[:255] or None


def record(factory: sessionmaker[Session], entry: AuditEntry) -> None:
    with session_scope(factory) as session:
        session.add(entry)


def middleware(
    factory_of: Callable[[Request], sessionmaker[Session]],
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def audit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.method in MUTATING:
            entry = AuditEntry(
                at=utcnow(),
                username=getattr(request.state, "username", None),
                action=action_of(request),
                target=target_of(request),
                status_code=response.status_code,
                outcome=outcome_of(response.status_code),
                client=request.client.host if request.client else None,
            )
            try:
                await run_in_threadpool(record, factory_of(request), entry)
            except Exception:  # the answer is already decided; a lost audit row is logged loudly
                log.exception("could not write the audit entry for %s", entry.action)
        return response

    return audit
