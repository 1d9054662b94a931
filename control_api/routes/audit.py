from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from control_api.deps import Admin, SessionDep
from control_api.models import AuditEntry
from control_api.routes import errors
from control_api.schemas import AuditOut

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=list[AuditOut], responses=errors())
def list_audit(
    session: SessionDep,
    caller: Admin,
    username: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    """The most recent audit entries (admin only)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if username:
        query = query.where(AuditEntry.username == username)
    return [AuditOut.model_validate(row) for row in session.execute(query).scalars()]
