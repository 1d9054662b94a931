"""Control API throughput: requests/s for GET /api/models and batch submission at N concurrent clients.

Starts `python -m control_api api` (uvicorn) against PostgreSQL in a throw-away schema, with Redis rate
limiting in the path (limit raised so it never refuses), seeds the registry, then drives it with N
concurrent asyncio clients (httpx) for a fixed time per scenario and prints the figures. No timing is
asserted anywhere: numbers depend on the machine (and here, the load generator shares its cores).

    .venv/bin/python benchmarks/api_throughput.py --clients 100 --duration 15 --server-workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf
import sqlalchemy

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench-admin-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree_cpu_s(root: int) -> float:
    """User+system CPU seconds of `root` and its children (the uvicorn workers), from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pids = 0.0, [root]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == root:
                pids.append(int(entry.name))
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def small_wav(seconds: float = 1.0) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def drive(
    name: str, clients: int, duration: float, make_request: object, server_pid: int, warmup: float = 2.0
) -> dict[str, float]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        start = time.perf_counter()
        measure_from = start + warmup
        stop = measure_from + duration

        async def one_client() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop:
                try:
                    response = await make_request(client)  # type: ignore[operator]
                    code = response.status_code
                except httpx.HTTPError:
                    code = -1
                done = time.perf_counter()
                if now >= measure_from:
                    latencies.append(done - now)
                    codes[code] = codes.get(code, 0) + 1
                    errors += code < 200 or code >= 300

        async def cpu_probe() -> tuple[float, float]:
            await asyncio.sleep(max(measure_from - time.perf_counter(), 0))
            before = process_tree_cpu_s(server_pid)
            await asyncio.sleep(max(stop - time.perf_counter(), 0))
            return before, process_tree_cpu_s(server_pid)

        probe = asyncio.ensure_future(cpu_probe())
        await asyncio.gather(*(one_client() for _ in range(clients)))
        cpu_before, cpu_after = await probe
    ok = len(latencies) - errors
    latencies.sort()
    result = {
        "requests": float(len(latencies)),
        "ok_per_s": ok / duration,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
        "errors": float(errors),
        # Server CPU per request: what the machine's load distorts least (the load generator's CPU excluded).
        "server_cpu_ms": 1000 * (cpu_after - cpu_before) / max(len(latencies), 1),
    }
    print(
        f"{name:<28} {clients:>4} clients  {result['ok_per_s']:8.1f} req/s  "
        f"p50 {result['p50_ms']:7.1f} ms  p95 {result['p95_ms']:7.1f} ms  "
        f"server CPU {result['server_cpu_ms']:5.1f} ms/req  "
        f"errors {errors} {dict(sorted(codes.items()))}",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per scenario")
    parser.add_argument("--server-workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--database-url", default="postgresql+psycopg://root@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="empty: in-process limits")
    parser.add_argument("--seed-models", type=int, default=50)
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin_engine = sqlalchemy.create_engine(args.database_url)
    with admin_engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    state = Path(tempfile.mkdtemp(prefix="voiceflow-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "VOICEFLOW_DATABASE_URL": args.database_url,
        "VOICEFLOW_DB_SCHEMA": schema,
        "VOICEFLOW_REDIS_URL": args.redis_url,
        "VOICEFLOW_REDIS_PREFIX": f"{schema}:",
        "VOICEFLOW_RATE_LIMIT": "100000000",
        "VOICEFLOW_STATE_DIR": str(state),
        "VOICEFLOW_ADMIN_PASSWORD": PASSWORD,
        "VOICEFLOW_JWT_SECRET": "bench-" + uuid.uuid4().hex * 2,
        "VOICEFLOW_EMBEDDED_WORKERS": "0",  # measure submission, not diarization
        "VOICEFLOW_REGISTRY_MODE": "embedded",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "control_api",
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.server_workers),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        token = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        # Seed the registry directly (the train endpoint would need the trainer command to exist).
        with sqlalchemy.create_engine(
            args.database_url, connect_args={"options": f"-csearch_path={schema}"}
        ).begin() as conn:
            for i in range(args.seed_models):
                conn.execute(
                    sqlalchemy.text(
                        "INSERT INTO models (id, name, version, state, config, metrics,"
                        " created_by, updated_by, created_at, updated_at)"
                        " VALUES (:id, 'bench', :v, 'exported', '{}', '{\"der\": 0.1}',"
                        " 'admin', 'admin', now(), now())"
                    ),
                    {"id": str(uuid.uuid4()), "v": i + 1},
                )
        wav = small_wav()

        async def list_models(client: httpx.AsyncClient) -> httpx.Response:
            return await client.get(f"{base}/api/models?limit=20", headers=headers)

        async def submit_batch(client: httpx.AsyncClient) -> httpx.Response:
            files = [("files", ("bench.wav", wav, "audio/wav"))]
            return await client.post(f"{base}/api/inference/batch", files=files, headers=headers)

        print(
            f"Control API on PostgreSQL ({args.server_workers} uvicorn workers, Redis rate limits "
            f"{'on' if args.redis_url else 'off'}), {os.cpu_count()} CPUs shared with the load generator"
        )
        asyncio.run(drive("GET /api/models", args.clients, args.duration, list_models, server.pid))
        asyncio.run(drive("POST /api/inference/batch", args.clients, args.duration, submit_batch, server.pid))
    finally:
        server.terminate()
        server.wait(30)
        with admin_engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        import shutil

        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
