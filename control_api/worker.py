"""Background worker loops: batch files and registry work, as threads in the API or a process of their own."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from sqlalchemy.orm import Session, sessionmaker

from control_api import jobs, runner
from control_api.backends import RegistryBackend
from control_api.db import session_scope
from control_api.engine import DiarizeFn
from control_api.settings import Settings

log = logging.getLogger(__name__)
CLUSTER_SYNC_S = 5.0


def new_worker_id(kind: str) -> str:
    # Host and pid make a lease holder findable in the database when debugging a stuck file.
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WorkerPool:
    """`batch_workers` threads draining batch files, plus one thread for registry work and cluster sync."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        diarize: DiarizeFn,
        backend: RegistryBackend,
        *,
        batch_workers: int,
        registry_worker: bool = True,
    ) -> None:
        self.factory, self.settings, self.diarize, self.backend = factory, settings, diarize, backend
        self.stop_event = threading.Event()
        self.threads = [
            threading.Thread(target=self._batch_loop, name=f"batch-worker-{i}", daemon=True)
            for i in range(batch_workers)
        ]
        if registry_worker:
            self.threads.append(threading.Thread(target=self._registry_loop, name="registry-worker", daemon=True))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking new work; a file in progress finishes (or its lease lets another worker retry it)."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout_s)

    def wait(self) -> None:
        for thread in self.threads:
            while thread.is_alive():
                thread.join(0.5)

    def _batch_loop(self) -> None:
        worker_id = new_worker_id("batch")
        while not self.stop_event.is_set():
            try:
                worked = jobs.process_next(
                    self.factory, self.diarize, worker_id=worker_id, lease_s=self.settings.lease_s
                )
            except Exception:  # the database restarting must not end the loop
                log.exception("batch worker iteration failed")
                worked = False
            if not worked:
                self.stop_event.wait(self.settings.poll_interval_s)

    def _registry_loop(self) -> None:
        worker_id = new_worker_id("registry")
        while not self.stop_event.is_set():
            worked = False
            try:
                if self.backend.mode == "embedded":
                    worked = runner.process_next(self.factory, self.settings, worker_id=worker_id)
                else:
                    with session_scope(self.factory) as session:
                        self.backend.sync(session)
            except Exception:
                log.exception("registry worker iteration failed")
            if not worked:
                # In-cluster this loop only reads resources: every few seconds is plenty for the API server.
                pause = self.settings.poll_interval_s if self.backend.mode == "embedded" else CLUSTER_SYNC_S
                self.stop_event.wait(max(pause, 0.2))
