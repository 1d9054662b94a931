"""The work queue on both databases: exclusive leases, takeover after expiry, stale results discarded."""

from __future__ import annotations

import functools
import threading
from datetime import timedelta
from pathlib import Path

from api_support import factory_for, soundfile_diarize, wav_bytes
from sqlalchemy.orm import Session, sessionmaker

from control_api import jobs, queue
from control_api.db import session_scope
from control_api.engine import FileResult
from control_api.models import BatchFile, utcnow
from control_api.settings import Settings


def add_job(factory: sessionmaker[Session], tmp_path: Path, n: int, corrupt: frozenset[int] = frozenset()) -> str:
    files = []
    for i in range(n):
        path = tmp_path / f"f{i}.wav"
        path.write_bytes(b"RIFF....WAVEnot really audio" if i in corrupt else wav_bytes(0.2))
        files.append(jobs.NewFile(path.name, path.as_uri()))
    with session_scope(factory) as session:
        return jobs.create_job(session, "tester", files).id


def statuses(factory: sessionmaker[Session], job_id: str) -> list[str]:
    with session_scope(factory) as session:
        job = jobs.load_job(session, job_id)
        assert job is not None
        return [f.status for f in job.files]


def test_a_claimed_file_is_not_claimed_again_until_its_lease_expires(db_settings: Settings, tmp_path: Path) -> None:
    factory = factory_for(db_settings)
    add_job(factory, tmp_path, 1)
    now = utcnow()
    claim = functools.partial(queue.claim_next, work=jobs.FILES, lease_s=30.0)
    with session_scope(factory) as session:
        first = claim(session, worker_id="w1", now=now)
        assert first is not None and first.attempts == 1
    with session_scope(factory) as session:
        assert claim(session, worker_id="w2", now=now) is None
    later = now + timedelta(seconds=31)
    with session_scope(factory) as session:
        taken = claim(session, worker_id="w2", now=later)
        assert taken is not None and taken.claimed_by == "w2" and taken.attempts == 2
    with session_scope(factory) as session:
        # The first worker has lost the lease: it can neither renew nor finish.
        assert not queue.extend_lease(session, jobs.FILES, taken.id, worker_id="w1", lease_s=30, now=later)


def test_one_corrupt_file_fails_alone(db_settings: Settings, tmp_path: Path) -> None:
    factory = factory_for(db_settings)
    job_id = add_job(factory, tmp_path, 4, corrupt=frozenset({2}))
    while jobs.process_next(factory, soundfile_diarize, worker_id="w", lease_s=30):
        pass
    assert statuses(factory, job_id) == ["done", "done", "failed", "done"]
    with session_scope(factory) as session:
        job = jobs.load_job(session, job_id)
        assert job is not None
        assert "cannot decode" in (job.files[2].error or "")
        assert job.files[0].rttm and job.files[0].rttm.startswith("SPEAKER f0 1 ")
    assert jobs.derive_job_state(statuses(factory, job_id)) == "completed_with_errors"


def test_concurrent_workers_process_each_file_exactly_once(db_settings: Settings, tmp_path: Path) -> None:
    factory = factory_for(db_settings)
    job_id = add_job(factory, tmp_path, 24)
    seen: list[str] = []
    lock = threading.Lock()

    def diarize(path: Path, file_id: str) -> FileResult:
        with lock:
            seen.append(path.name)
        return FileResult([], "")

    def work(worker: str) -> None:
        while jobs.process_next(factory, diarize, worker_id=worker, lease_s=30):
            pass

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(f"f{i}.wav" for i in range(24))
    assert set(statuses(factory, job_id)) == {"done"}


def test_a_file_whose_workers_keep_dying_is_given_up(db_settings: Settings, tmp_path: Path) -> None:
    factory = factory_for(db_settings)
    job_id = add_job(factory, tmp_path, 1)
    with session_scope(factory) as session:
        session.query(BatchFile).update({"attempts": 3})
    assert jobs.process_next(factory, soundfile_diarize, worker_id="w", lease_s=30)
    with session_scope(factory) as session:
        job = jobs.load_job(session, job_id)
        assert job is not None and job.files[0].status == "failed"
        assert "gave up" in (job.files[0].error or "")


def test_job_state_is_derived_from_its_files() -> None:
    assert jobs.derive_job_state([]) == "queued"
    assert jobs.derive_job_state(["queued", "queued"]) == "queued"
    assert jobs.derive_job_state(["done", "queued"]) == "running"
    assert jobs.derive_job_state(["done", "done"]) == "completed"
    assert jobs.derive_job_state(["failed", "failed"]) == "failed"
    assert jobs.derive_job_state(["done", "failed"]) == "completed_with_errors"
    assert jobs.progress(["done", "running", "failed", "queued"]) == 0.5
