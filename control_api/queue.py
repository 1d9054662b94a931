"""Leasing units of work out of a table so several worker processes never do the same one twice.

A row is claimable when it is queued, or when it is running but its lease has expired (its worker died
or was killed mid-job): that is what makes a restart lose nothing. PostgreSQL claims with
`SELECT ... FOR UPDATE SKIP LOCKED`, so concurrent workers each lock a different row without waiting;
SQLite (one writer at a time) claims with a guarded UPDATE and retries when another worker won.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from control_api.db import session_scope
from control_api.models import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")


def status_name(cls: Any) -> str:
    # Batch files have a `status`; registry models a `state` (their whole life, not just queue position).
    return "status" if hasattr(cls, "status") else "state"


@dataclass(frozen=True)
class WorkQueue(Generic[T]):
    """A table's rows as units of work: a row in status `queued` waits; a worker leases it by moving
    it to `running` (claimed first in `order_by`, by default the id)."""

    table: type[T]
    queued: str
    running: str
    order_by: Any = None


def claimable(work: WorkQueue[Any], now: datetime) -> Any:
    table: Any = work.table
    status = getattr(table, status_name(table))
    return or_(status == work.queued, and_(status == work.running, table.lease_expires_at < now))


def claim_next(session: Session, work: WorkQueue[T], *, worker_id: str, lease_s: float, now: datetime) -> T | None:
    """Lease one row (status -> `running`); the caller commits. None when there is no work."""
    table: Any = work.table
    condition = claimable(work, now)
    order = work.order_by if work.order_by is not None else table.id
    values = {
        status_name(table): work.running,
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


def still_holds(work: WorkQueue[Any], row_id: Any, worker_id: str) -> Any:
    """WHERE clause for writes by a worker: it only finishes work whose lease it still holds."""
    table: Any = work.table
    return and_(table.id == row_id, table.claimed_by == worker_id, getattr(table, status_name(table)) == work.running)


def extend_lease(
    session: Session, work: WorkQueue[Any], row_id: Any, *, worker_id: str, lease_s: float, now: datetime
) -> bool:
    result: Any = session.execute(
        update(work.table)
        .where(still_holds(work, row_id, worker_id))
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
    )
    return bool(result.rowcount == 1)


class LeaseKeeper:
    """Renews a lease from a background thread while its holder works (`with LeaseKeeper(...):`).

    Renewal happens every third of the lease, so a long file or training run is never taken over while
    its worker is alive, and is taken over within one lease when the worker dies.
    """

    def __init__(self, factory: Any, work: WorkQueue[Any], row_id: Any, *, worker_id: str, lease_s: float) -> None:
        self._args = (factory, work, row_id, worker_id, lease_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{row_id}")

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        factory, work, row_id, worker_id, lease_s = self._args
        while not self._stop.wait(max(lease_s / 3, 0.05)):
            try:
                with session_scope(factory) as session:
                    if not extend_lease(session, work, row_id, worker_id=worker_id, lease_s=lease_s, now=utcnow()):
                        return
            except Exception:  # a database blip must not kill the work; the next beat retries
                log.exception("lease renewal failed for %s %s", work.table.__name__, row_id)
