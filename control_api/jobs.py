"""Batch diarization jobs: creating them, summarising them, and doing one file of work."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from control_api import queue
from control_api.db import session_scope
from control_api.engine import DiarizeFn
from control_api.models import BatchFile, BatchJob, utcnow

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
TERMINAL = frozenset({DONE, FAILED})
FILES = queue.WorkQueue(BatchFile, queued=QUEUED, running=RUNNING)  # batch files waiting for a worker
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class NewFile:
    filename: str
    source_uri: str


def derive_job_state(statuses: Sequence[str]) -> str:
    """queued | running | completed | failed | completed_with_errors, from the files' statuses."""
    if not statuses or all(s == QUEUED for s in statuses):
        return "queued"
    if not all(s in TERMINAL for s in statuses):
        return "running"
    if all(s == FAILED for s in statuses):
        return "failed"
    return "completed_with_errors" if FAILED in statuses else "completed"


def progress(statuses: Sequence[str]) -> float:
    return sum(s in TERMINAL for s in statuses) / len(statuses) if statuses else 1.0


def create_job(session: Session, username: str, files: Sequence[NewFile], job_id: str | None = None) -> BatchJob:
    job = BatchJob(id=job_id or str(uuid.uuid4()), created_by=username, created_at=utcnow())
    job.files = [
        BatchFile(position=i, filename=f.filename, source_uri=f.source_uri, status=QUEUED, attempts=0)
        for i, f in enumerate(files)
    ]
    session.add(job)
    session.flush()
    return job


def combined_rttm(files: Sequence[BatchFile]) -> str:
    """The finished files' RTTM lines in file order; failed and unfinished files contribute nothing."""
    return "".join(f.rttm for f in sorted(files, key=lambda f: f.position) if f.status == DONE and f.rttm)


def path_of(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"unsupported source {uri!r}")
    return Path(unquote(parsed.path))


def file_id_of(batch_file: BatchFile) -> str:
    # RTTM file ids are whitespace-free tokens; the stored name is already cleaned of anything else.
    stem = Path(batch_file.filename).stem or f"file{batch_file.position}"
    return stem.replace(" ", "_")


def process_next(
    factory: sessionmaker[Session],
    diarize: DiarizeFn,
    *,
    worker_id: str,
    lease_s: float,
    max_attempts: int = 3,
) -> bool:
    """Lease one queued file, diarize it, store its result or error. False when the queue is empty."""
    with session_scope(factory) as session:
        row = queue.claim_next(session, FILES, worker_id=worker_id, lease_s=lease_s, now=utcnow())
        if row is None:
            return False
        file_pk, uri, file_id, attempts = row.id, row.source_uri, file_id_of(row), row.attempts
        if row.started_at is None:
            row.started_at = utcnow()
        if attempts > max_attempts:
            # Its workers keep dying on it (a poison file): stop retrying rather than loop forever.
            _finish(row, FAILED, error=f"gave up after {max_attempts} attempts that did not finish")
            return True

    try:
        with queue.LeaseKeeper(factory, FILES, file_pk, worker_id=worker_id, lease_s=lease_s):
            result = diarize(path_of(uri), file_id)
        values: dict[str, Any] = {
            "status": DONE,
            "segments": result.segments,
            "rttm": result.rttm,
            "model": getattr(result, "model", None),
            "error": None,
        }
    except Exception as exc:  # one bad file fails only itself
        log.info("batch file %s failed: %s", file_pk, exc)
        values = {"status": FAILED, "error": f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]}
    with session_scope(factory) as session:
        written: Any = session.execute(
            update(BatchFile)
            .where(queue.still_holds(FILES, file_pk, worker_id))
            .values(**values, finished_at=utcnow(), lease_expires_at=None)
        )
        if written.rowcount != 1:
            # Our lease expired and another worker took the file over: its result is the one kept.
            log.warning("lost the lease on batch file %s; discarding this worker's result", file_pk)
    return True


def _finish(row: BatchFile, status: str, *, error: str | None = None) -> None:
    row.status, row.error, row.finished_at, row.lease_expires_at = status, error, utcnow(), None


def recent_jobs(
    session: Session, *, created_by: str | None, limit: int, offset: int
) -> list[tuple[BatchJob, list[str]]]:
    """Newest jobs first (of one user, or everyone's), each with its files' statuses (two queries)."""
    query = select(BatchJob).order_by(BatchJob.created_at.desc(), BatchJob.id).limit(limit).offset(offset)
    if created_by is not None:
        query = query.where(BatchJob.created_by == created_by)
    found = list(session.execute(query).scalars())
    statuses: dict[str, list[str]] = {job.id: [] for job in found}
    if found:
        rows = session.execute(
            select(BatchFile.job_id, BatchFile.status).where(BatchFile.job_id.in_(list(statuses)))
        ).all()
        for job_id, status in rows:
            statuses[job_id].append(status)
    return [(job, statuses[job.id]) for job in found]


def load_job(session: Session, job_id: str) -> BatchJob | None:
    return session.execute(select(BatchJob).where(BatchJob.id == job_id)).scalar_one_or_none()
