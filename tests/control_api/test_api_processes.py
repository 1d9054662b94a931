"""Real processes against PostgreSQL: uvicorn API servers and `api worker` processes.

These are the guarantees that only show with separate processes: a killed server loses no work, and
two worker processes never diarize the same file twice (SELECT ... FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import ADMIN_PASSWORD, HERE, REPO, wait_for, wav_bytes

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.started: list[tuple[subprocess.Popen[bytes], Any]] = []

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "control_api", *args],
            cwd=REPO,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append((proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.log_dir.glob("*.log"))

    def stop_all(self) -> None:
        for proc, log in self.started:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()


@pytest.fixture
def procs(pg_url: str, pg_schema: str, tmp_path: Path) -> Iterator[Processes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)]),
        "VOICEFLOW_DATABASE_URL": pg_url,
        "VOICEFLOW_DB_SCHEMA": pg_schema,
        "VOICEFLOW_STATE_DIR": str(tmp_path / "state"),
        "VOICEFLOW_JWT_SECRET": "process-test-secret-" + "p" * 32,
        "VOICEFLOW_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "VOICEFLOW_DIARIZE_FN": "api_support:soundfile_diarize",
        "VOICEFLOW_REGISTRY_MODE": "embedded",
        "VOICEFLOW_POLL_INTERVAL_S": "0.05",
        "API_TEST_PROCESS_LOG": str(tmp_path / "processed.log"),
    }
    env.pop("VOICEFLOW_REDIS_URL", None)
    processes = Processes(env, tmp_path)
    yield processes
    processes.stop_all()


def serve(procs: Processes, port: int, **env: str) -> subprocess.Popen[bytes]:
    proc = procs.start(
        f"api-{port}", "api", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", **env
    )
    url = f"http://127.0.0.1:{port}/health"

    def up() -> bool:
        assert proc.poll() is None, procs.logs()
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, timeout_s=60, interval_s=0.2)
    return proc


def admin_headers(base: str) -> dict[str, str]:
    token = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def submit(base: str, headers: dict[str, str], n: int) -> str:
    files = [("files", (f"f{i:02d}.wav", wav_bytes(0.3), "audio/wav")) for i in range(n)]
    response = httpx.post(f"{base}/api/inference/batch", files=files, headers=headers, timeout=60)
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def job(base: str, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{base}/api/inference/batch/{job_id}", headers=headers, timeout=10).json()
    return body


def processed(tmp_path: Path) -> list[tuple[str, ...]]:
    log = tmp_path / "processed.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [tuple(line.split()) for line in lines]


def test_two_worker_processes_never_process_a_file_twice(procs: Processes, tmp_path: Path) -> None:
    port = free_port()
    serve(procs, port, VOICEFLOW_EMBEDDED_WORKERS="0")
    base = f"http://127.0.0.1:{port}"
    headers = admin_headers(base)
    for i in range(2):
        procs.start(f"worker-{i}", "api", "worker", "--threads", "2", "--no-registry", API_TEST_DIARIZE_DELAY_S="0.1")
    # Both workers polling before the job exists, so the test shows them sharing it.
    wait_for(
        lambda: all("worker ready" in (tmp_path / f"worker-{i}.log").read_text() for i in range(2)),
        timeout_s=60,
        interval_s=0.2,
    )
    job_id = submit(base, headers, 24)
    done = wait_for(lambda: (body := job(base, headers, job_id))["progress"] == 1.0 and body, timeout_s=90)
    assert done["state"] == "completed", procs.logs()
    runs = processed(tmp_path)
    counts = Counter(name for _, name in runs)
    assert len(counts) == 24 and set(counts.values()) == {1}, counts
    assert len({pid for pid, _ in runs}) == 2, "both worker processes should have taken a share"
    assert all(f["attempts"] == 1 for f in done["files"])


def test_server_killed_mid_job_loses_nothing(procs: Processes, tmp_path: Path) -> None:
    port = free_port()
    env = {"VOICEFLOW_EMBEDDED_WORKERS": "1", "VOICEFLOW_LEASE_S": "2", "API_TEST_DIARIZE_DELAY_S": "0.4"}
    server = serve(procs, port, **env)
    base = f"http://127.0.0.1:{port}"
    headers = admin_headers(base)
    job_id = submit(base, headers, 6)

    def some_done_and_one_running() -> bool:
        statuses = [f["status"] for f in job(base, headers, job_id)["files"]]
        return "done" in statuses and "running" in statuses

    wait_for(some_done_and_one_running, timeout_s=60)
    server.send_signal(signal.SIGKILL)  # no graceful shutdown: the running file keeps its lease
    server.wait()

    serve(procs, port, **env)
    headers = admin_headers(base)  # same key: old tokens would do too, but log in like a client would
    done = wait_for(lambda: (body := job(base, headers, job_id))["progress"] == 1.0 and body, timeout_s=90)
    assert done["state"] == "completed", procs.logs()
    assert [f["filename"] for f in done["files"]] == [f"f{i:02d}.wav" for i in range(6)]
    assert all(f["rttm"] and f["segments"] for f in done["files"])
    # The file interrupted by the kill was taken over after its lease expired: a second attempt.
    assert sorted(f["attempts"] for f in done["files"]) == [1, 1, 1, 1, 1, 2]
    assert set(Counter(name for _, name in processed(tmp_path)).values()) <= {1, 2}


def test_rate_limit_holds_across_api_processes_with_redis(procs: Processes, redis_url: str, redis_prefix: str) -> None:
    port = free_port()
    env = {
        "VOICEFLOW_EMBEDDED_WORKERS": "0",
        "VOICEFLOW_REDIS_URL": redis_url,
        "VOICEFLOW_REDIS_PREFIX": redis_prefix,
        "VOICEFLOW_RATE_LIMIT": "12",
        "VOICEFLOW_RATE_LIMIT_WINDOW_S": "3600",
    }
    # Two separate API processes (as two pods behind a Service), requests alternating between them.
    second = free_port()
    serve(procs, port, **env)
    serve(procs, second, **env)
    bases = [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{second}"]
    headers = admin_headers(bases[0])
    codes = [httpx.get(f"{bases[i % 2]}/api/models", headers=headers, timeout=10).status_code for i in range(20)]
    # An in-process limit would let 12 through *each*; Redis counts the user's requests globally.
    assert codes.count(200) == 12 and codes.count(429) == 8 and codes[:12] == [200] * 12
