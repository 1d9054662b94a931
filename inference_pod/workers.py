"""`voiceflow serve --workers N`: N whole pod processes behind one port (SO_REUSEPORT).

Why processes, and why whole pods: within one process the GIL serialises every stream's Python
work (WebSocket frames, protocol, JSON, VAD bookkeeping, clustering), so a pod with threads alone
stalls near one core however many it has. Each worker here is the single-process pod unchanged:
its own event loop, model, cross-stream batchers and admission. The kernel spreads connections
over the workers' listening sockets (SO_REUSEPORT hashes each connection's 4-tuple), so nothing
sits in front of them and a stream never crosses a process. (A process pool fed through shared
memory behind one event loop was the alternative: it keeps I/O and the protocol on one core,
which the load generator measures as a large share of a stream's cost; docs/deploy.md has figures.)

Limits stay global:
  - `max_connections` and `max_pending_jobs` are split evenly (each worker enforces its share; the
    kernel's hashing keeps the shares close to even);
  - the per-token stream limit is exact, counted in shared memory (inference_pod/shared_limits.py);
  - shedding and the queue-delay signal are per worker, as they should be: each worker's backlog
    is its own cores' work.
Each worker watches the model for hot reload itself. /ready and /metrics: a worker only joins
the port (listen) once its model is loaded, so whichever worker answers /ready speaks for a
serving process; /metrics is aggregated over all workers through prometheus_client's
multiprocess mode (counters and histograms summed, gauges summed or max/min over live workers).

Workers are forked from the supervisor after it has imported the server (and before it starts any
thread or loads a model), with the interpreter's objects frozen out of the garbage collector: the
~110 MB of imported libraries are then shared copy-on-write by all workers, and each worker adds
only its model and its streams. The supervisor loads no model itself. It forwards SIGTERM/SIGINT to every worker (each
drains its own streams: `final`, close 1012), restarts a worker that dies after it had served, and
gives up with that worker's exit status if one dies before it ever served (bad settings, no model).
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from inference_pod.settings import Settings

log = logging.getLogger(__name__)

# Limits that hold for the whole pod; each of N workers enforces ceil(limit / N).
SPLIT_LIMITS = ("max_connections", "max_pending_jobs")
RESTART_DELAY_SECONDS = 1.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def cgroup_cpu_limit(cpu_max: str | None) -> int | None:
    """CPUs allowed by a cgroup v2 `cpu.max` line ("QUOTA PERIOD" or "max PERIOD"), rounded up."""
    if not cpu_max:
        return None
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def available_cpus() -> int:
    """CPUs this process may use: its cgroup quota (a Kubernetes CPU limit), else its affinity."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = os.cpu_count() or 1
    try:
        quota = cgroup_cpu_limit(Path("/sys/fs/cgroup/cpu.max").read_text())
    except OSError:
        quota = None
    return min(affinity, quota) if quota else affinity


def resolve_processes(requested: int) -> int:
    return requested if requested > 0 else available_cpus()


def worker_settings(settings: Settings, processes: int) -> Settings:
    """One worker's settings: the global limits split N ways, and never itself a supervisor."""
    split = {name: max(1, math.ceil(getattr(settings, name) / processes)) for name in SPLIT_LIMITS}
    return settings.replace(processes=1, **split)


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A bound, not yet listening SO_REUSEPORT socket: uvicorn's asyncio server calls listen() only
    after the worker's model has loaded, so the kernel never hands a connection to a loading worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _worker_main(settings: Settings, index: int, token_table: Any, token_lock: Any, served: Any) -> None:
    """Entry point of one worker process (forked from the supervisor)."""
    from prometheus_client import values

    from inference_pod.serve import build_server
    from inference_pod.shared_limits import SharedConnectionLimiter

    for sig in (signal.SIGTERM, signal.SIGINT):  # the supervisor's handlers came along with the fork
        signal.signal(sig, signal.SIG_DFL)
    # prometheus_client picks its value store when first imported, which may have been before the
    # supervisor set PROMETHEUS_MULTIPROC_DIR: pick again so this worker writes to the shared files.
    values.ValueClass = values.get_value_class()
    # Its own process group: a terminal's Ctrl-C reaches the supervisor only, which passes it on
    # once (a second copy straight from the terminal would read as "skip the drain").
    os.setpgrp()
    logging.basicConfig(  # force: the supervisor's handler came along with the fork
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s",
        force=True,
    )
    try:
        server = build_server(settings)
    except ValueError as exc:  # refused settings (e.g. open without auth): the supervisor stops too
        log.error("%s", exc)
        raise SystemExit(2) from None
    server.pod.token_limits = SharedConnectionLimiter(token_table, token_lock, settings.max_connections_per_token)
    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets)
        served[index] = 1  # model loaded and listening: from now on a death is a crash to restart

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[reuseport_socket(settings.host, settings.port)])


class Supervisor:
    def __init__(self, settings: Settings, processes: int) -> None:
        self.settings = settings
        self.processes = processes
        self.context = multiprocessing.get_context("fork")
        from inference_pod.shared_limits import new_table

        self.token_table, self.token_lock = new_table(self.context)
        self.served = self.context.Array("b", processes, lock=False)
        self.workers: list[Any] = [None] * processes
        self.stopping = False
        self.signals = 0

    def start_worker(self, index: int) -> None:
        self.served[index] = 0
        proc = self.context.Process(
            target=_worker_main,
            args=(
                worker_settings(self.settings, self.processes),
                index,
                self.token_table,
                self.token_lock,
                self.served,
            ),
            name=f"voiceflow-worker-{index}",
        )
        proc.start()
        self.workers[index] = proc
        log.info("worker %d started (pid %d)", index, proc.pid)

    def on_signal(self, sig: int, frame: FrameType | None) -> None:
        # Each worker drains on the first signal and skips the wait on a second: pass both on.
        self.stopping = True
        self.signals += 1
        for proc in self.workers:
            if proc is not None and proc.is_alive():
                os.kill(proc.pid, sig)

    def run(self) -> int:
        # Objects that exist now are never collected: a collection would write to (and so copy)
        # every page of them in every worker.
        gc.collect()
        gc.freeze()
        for index in range(self.processes):
            self.start_worker(index)
        while True:
            live = [p for p in self.workers if p is not None and p.exitcode is None]
            if not live:
                return 0
            multiprocessing.connection.wait([p.sentinel for p in live], timeout=1.0)
            for index, proc in enumerate(self.workers):
                if proc is None or proc.exitcode is None:
                    continue
                _mark_dead(proc.pid)
                if self.stopping:
                    self.workers[index] = None
                    continue
                if not self.served[index]:
                    log.error("worker %d exited (status %s) before serving: stopping", index, proc.exitcode)
                    self.on_signal(signal.SIGTERM, None)
                    self._wait_all()
                    return proc.exitcode or 1
                log.warning("worker %d died (status %s): restarting it", index, proc.exitcode)
                time.sleep(RESTART_DELAY_SECONDS)
                self.start_worker(index)

    def _wait_all(self) -> None:
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds + 10.0
        for proc in self.workers:
            if proc is not None:
                proc.join(max(0.0, deadline - time.monotonic()))
                if proc.exitcode is None:
                    proc.kill()
                    proc.join()


def _mark_dead(pid: int | None) -> None:
    """Drop a dead worker's live gauges from the aggregated /metrics."""
    directory = os.environ.get(MULTIPROC_ENV)
    if pid is None or not directory:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)


def prepare_metrics_dir() -> str | None:
    """A fresh multiprocess metrics directory for the workers (inherited through the environment).
    One given in PROMETHEUS_MULTIPROC_DIR (a Kubernetes emptyDir) is emptied first, as
    prometheus_client requires; otherwise a temporary one is made, and returned for removal."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        return None
    made = tempfile.mkdtemp(prefix="voiceflow-metrics-")
    os.environ[MULTIPROC_ENV] = made
    return made


def supervise(settings: Settings, processes: int) -> int:
    """Run `processes` workers until they have all exited; the exit status of the pod."""
    # Bind once here so a taken port or bad address is one clear error, not N crashing workers.
    try:
        reuseport_socket(settings.host, settings.port).close()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        return 2
    made = prepare_metrics_dir()
    supervisor = Supervisor(settings, processes)
    previous = {sig: signal.signal(sig, supervisor.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("serving on %s:%d with %d worker processes", settings.host, settings.port, processes)
    try:
        return supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
