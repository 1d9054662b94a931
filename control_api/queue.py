"""Leasing units of work out of a table so several worker processes never do the same one twice.

A row is claimable when it is queued, or when it is running but its lease has expired (its worker died
or was killed mid-job): that is what makes a restart lose nothing. PostgreSQL claims with
`SELECT ... FOR UPDATE SKIP LOCKED`, so concurrent workers each lock a different row without waiting;
SQLite (one writer at a time) claims with a guarded UPDATE and retries when another worker won.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from control_api.db import session_scope
from control_api.models import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")


def status_name(cls: Any) -> str:
    # Batch files have a `status`; registry models a `state` (their whole life, not just queue position).
    return "status" if hasattr(cls, "status") else "state"


def claimable(cls: Any, queued: str, running: str, now: datetime) -> Any:
    status = getattr(cls, status_name(cls))
    return or_(status == queued, and_(status == running, cls.lease_expires_at < now))


def claim_next(
    session: Session,
    cls: type[T],
    *,
    queued: str,
    running: str,
    worker_id: str,
    lease_s: float,
    now: datetime,
    order_by: Any = None,
) -> T | None:
    """Lease one row (status -> `running`); the caller commits. None when there is no work."""
    table: Any = cls
    condition = claimable(table, queued, running, now)
    order = order_by if order_by is not None else table.id
    values = {
        status_name(table): running,
        "claimed_by": worker_id,
        "lease_expires_at": now + timedelta(seconds=lease_s),
    }
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(
            select(table).where(condition).order_by(order).limit(1).with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if row is None:
            return None
        for key, value in values.items():
            setattr(row, key, value)
        _bump_attempts(row)
        session.flush()
        return row
    for _ in range(10):
        candidate = session.execute(select(table.id).where(condition).order_by(order).limit(1)).scalar()
        if candidate is None:
            return None
        result: Any = session.execute(update(table).where(table.id == candidate, condition).values(**values))
        if result.rowcount == 1:
            row = session.get(table, candidate, populate_existing=True)
            _bump_attempts(row)
            session.flush()
            return row
    return None


def _bump_attempts(row: Any) -> None:
    if hasattr(row, "attempts"):
        row.attempts = (row.attempts or 0) + 1


def still_holds(cls: Any, row_id: Any, worker_id: str, running: str) -> Any:
    """WHERE clause for writes by a worker: it only finishes work whose lease it still holds."""
    return and_(cls.id == row_id, cls.claimed_by == worker_id, getattr(cls, status_name(cls)) == running)


def extend_lease(
    session: Session, cls: Any, row_id: Any, *, worker_id: str, running: str, lease_s: float, now: datetime
) -> bool:
    result: Any = session.execute(
        update(cls)
        .where(still_holds(cls, row_id, worker_id, running))
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
    )
    return bool(result.rowcount == 1)


class LeaseKeeper:
    """Renews a lease from a background thread while its holder works (`with LeaseKeeper(...):`).

    Renewal happens every third of the lease, so a long file or training run is never taken over while
    its worker is alive, and is taken over within one lease when the worker dies.
    """

    def __init__(self, factory: Any, cls: Any, row_id: Any, *, worker_id: str, running: str, lease_s: float) -> None:
        self._args = (factory, cls, row_id, worker_id, running, lease_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{row_id}")

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        factory, cls, row_id, worker_id, running, lease_s = self._args
        while not self._stop.wait(max(lease_s / 3, 0.05)):
            try:
                with session_scope(factory) as session:
                    if not extend_lease(
                        session,
                        cls,
                        row_id,
                        worker_id=worker_id,
                        running=running,
                        lease_s=lease_s,
                        now=utcnow(),
                    ):
                        return
            except Exception:  # a database blip must not kill the work; the next beat retries
                log.exception("lease renewal failed for %s %s", cls.__name__, row_id)
