"""`voiceflow serve --workers N`: whole pod processes behind one SO_REUSEPORT port.

A real 2-worker server (`python -m inference_pod` with VOICEFLOW_PROCESSES=2) as a subprocess:
its results equal a single in-process session's segment for segment, every worker serves, the
per-token limit holds across workers, /metrics sums the workers, and a crashed worker is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from inference_pod import engine
from inference_pod.settings import Settings
from inference_pod.shared_limits import SharedConnectionLimiter, find_slot, new_table, token_key
from inference_pod.workers import cgroup_cpu_limit, resolve_processes, worker_settings
from tests.inference_pod.pod_support import ROOT, OnLoopback, recv_json, speech

pytestmark = pytest.mark.timeout(300)

KEY = "workers-test-signing-key-0123456789abcdef"
PER_TOKEN = 3
START = json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_f32le"})


def token(sub: str) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time() + 600), "typ": "access", "role": "operator"}, KEY, "HS256")


# --- pure parts ------------------------------------------------------------------------------


def test_cpu_count_follows_the_cgroup_quota() -> None:
    assert cgroup_cpu_limit("200000 100000") == 2
    assert cgroup_cpu_limit("150000 100000") == 2  # 1.5 CPUs: round up, a worker per started core
    assert cgroup_cpu_limit("50000 100000") == 1
    assert cgroup_cpu_limit("max 100000") is None
    assert cgroup_cpu_limit("") is None and cgroup_cpu_limit("garbage") is None
    assert resolve_processes(3) == 3
    assert resolve_processes(0) >= 1


def test_worker_settings_split_the_global_limits() -> None:
    s = Settings(max_connections=1201, max_pending_jobs=512, max_connections_per_token=50, processes=0)
    w = worker_settings(s, 2)
    assert (w.max_connections, w.max_pending_jobs, w.processes) == (601, 256, 1)
    assert w.max_connections_per_token == 50  # counted across workers instead (shared table)
    assert worker_settings(Settings(max_pending_jobs=1), 4).max_pending_jobs == 1


def test_find_slot_probes_past_collisions_and_reuses_free_rows() -> None:
    n = 8
    keys, counts = [0] * n, [0] * n
    a, b, c = 3, 3 + n, 3 + 2 * n  # all three start at row 3
    assert find_slot(keys, counts, a) == 3
    keys[3], counts[3] = a, 1
    assert find_slot(keys, counts, b) == 4
    keys[4], counts[4] = b, 1
    assert find_slot(keys, counts, b) == 4  # found again, past a's row
    counts[3] = 0  # a closed its last stream: its row is reusable ...
    assert find_slot(keys, counts, c) == 3
    assert find_slot(keys, counts, b) == 4  # ... and b, further along the chain, is still found
    full_keys, busy = list(range(1, n + 1)), [1] * n
    assert find_slot(full_keys, busy, 1000) is None


def test_shared_limiter_counts_one_identity_across_processes() -> None:
    ctx = multiprocessing.get_context("spawn")
    table, lock = new_table(ctx)
    first, second = (SharedConnectionLimiter(table, lock, limit=3) for _ in range(2))  # two workers' views
    assert first.acquire("sub:alice") and second.acquire("sub:alice") and first.acquire("sub:alice")
    assert not second.acquire("sub:alice") and not first.acquire("sub:alice")
    assert second.acquire("sub:bob")  # another identity has its own count
    assert first.count("sub:alice") == 3 and second.count("sub:bob") == 1
    second.release("sub:alice")
    assert first.acquire("sub:alice")
    assert token_key("sub:alice") != 0 and token_key("sub:alice") == token_key("sub:alice")


# --- a real two-worker server ----------------------------------------------------------------


@dataclass
class Server(OnLoopback):
    proc: subprocess.Popen[bytes]
    port: int
    metrics_dir: Path

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return sorted(int(pid) for pid in children)

    def metric(self, name: str) -> float:
        text = httpx.get(self.http + "/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and not sample.labels:
                    return float(sample.value)
        raise KeyError(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(server: Server, workers: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, "the server exited"
        try:
            ready = httpx.get(server.http + "/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            ready = False
        # every worker has loaded its model: the pod-wide ready gauge is the min over workers
        if ready and len(server.worker_pids()) == workers and server.metric("inference_model_ready") == 1:
            return
        time.sleep(0.3)
    raise AssertionError("the workers did not all become ready")


@contextlib.contextmanager
def two_workers(metrics_dir: Path, **env_overrides: str) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "VOICEFLOW_HOST": "127.0.0.1",
        "VOICEFLOW_PORT": str(port),
        "VOICEFLOW_PROCESSES": "2",
        "VOICEFLOW_LOG_LEVEL": "warning",
        "VOICEFLOW_JWT_KEY": KEY,
        "VOICEFLOW_MAX_CONNECTIONS_PER_TOKEN": str(PER_TOKEN),
        "VOICEFLOW_MAX_REALTIME_FACTOR": "1000",
        "VOICEFLOW_REALTIME_BURST_SECONDS": "1000",
        "VOICEFLOW_MAX_QUEUE_DELAY_SECONDS": "60",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **env_overrides,
    }
    proc = subprocess.Popen([sys.executable, "-m", "inference_pod"], cwd=ROOT, env=env)
    srv = Server(proc, port, metrics_dir)
    try:
        wait_ready(srv, workers=2)
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with two_workers(tmp_path_factory.mktemp("metrics")) as srv:
        yield srv


def direct_final(audio: np.ndarray) -> list[dict[str, object]]:
    """One stream through one in-process engine session, fed as `voiceflow diarize --streaming` does."""
    model = engine.load_embedding_model(None)
    session = engine.new_stream_session(model)
    session.feed(audio)  # the session steps on its own clock: one feed is any chunking
    return [{"start": s.start, "end": s.end, "speaker": s.speaker, "final": True} for s in session.finish()]


def test_results_through_the_workers_equal_a_single_stream(server: Server) -> None:
    from inference_pod.client import StreamOutcome, stream_samples

    clips = [np.roll(speech(60.0, "dev00.wav"), -i * 40_000)[: 8 * 16000] for i in range(6)]

    async def all_streams() -> list[StreamOutcome]:
        # concurrently, so each worker batches several streams' VAD frames and embeddings together
        return await asyncio.gather(
            *(
                stream_samples(clip, server.ws, speed=0, chunk_seconds=0.1, token=token(f"user{i}"))
                for i, clip in enumerate(clips)
            )
        )

    outcomes = asyncio.run(all_streams())
    for clip, outcome in zip(clips, outcomes, strict=True):
        assert not outcome.errors and outcome.final is not None
        expected = direct_final(clip)
        assert expected and outcome.final == expected
        # the segments sent live as final are the final message's, too
        live = {(s["speaker"], s["start"]): s for r in outcome.results for s in r["segments"] if s["final"]}
        assert sorted(live.values(), key=lambda s: (s["start"], s["speaker"])) == expected


def worker_streams(metrics_dir: Path) -> dict[int, float]:
    """inference_streams_total per worker pid, read from the workers' own multiprocess files."""
    from prometheus_client.mmap_dict import MmapedDict

    out: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[-1])
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "inference_streams_total":
                out[pid] = out.get(pid, 0.0) + value
    return out


def test_every_worker_serves_and_metrics_sum_them(server: Server) -> None:
    before = server.metric("inference_streams_total")
    audio = speech(1.0).astype("<f4").tobytes()
    n = 16
    for i in range(n):
        with connect(f"{server.ws}?token={token(f'spread{i}')}", open_timeout=20) as ws:
            ws.send(START)
            assert recv_json(ws)["type"] == "ready"
            ws.send(audio)
            ws.send(json.dumps({"type": "end"}))
            while recv_json(ws)["type"] != "final":
                pass
    per_worker = worker_streams(server.metrics_dir)
    serving = {pid for pid, count in per_worker.items() if count > 0}
    assert serving <= set(server.worker_pids()) and len(serving) == 2, per_worker  # 2^-15 to fail by chance
    assert server.metric("inference_streams_total") == before + n


def test_per_token_limit_holds_across_workers(server: Server) -> None:
    url = f"{server.ws}?token={token('carol')}"
    opened, refused = 0, []
    with contextlib.ExitStack() as open_streams:
        for _ in range(2 * PER_TOKEN + 2):  # spread over both workers by the kernel's hashing
            try:
                ws = open_streams.enter_context(connect(url, open_timeout=20))
            except InvalidStatus as exc:
                refused.append(exc.response.status_code)
                continue
            ws.send(START)
            assert recv_json(ws)["type"] == "ready"
            opened += 1
        assert opened == PER_TOKEN and set(refused) == {429}
    deadline = time.monotonic() + 10  # the count is released as they close: the token may stream again
    while True:
        try:
            with connect(url, open_timeout=20):
                break
        except InvalidStatus:
            assert time.monotonic() < deadline, "the token's count was not released"
            time.sleep(0.2)


def test_a_crashed_worker_is_replaced(server: Server) -> None:
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:
        pids = server.worker_pids()
        if len(pids) == 2 and victim not in pids:
            break
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.3)
    wait_ready(server, workers=2)
    with connect(f"{server.ws}?token={token('after-crash')}", open_timeout=20) as ws:
        ws.send(START)
        assert recv_json(ws)["type"] == "ready"


def model_info(server: Server) -> dict[str, float]:
    text = httpx.get(server.http + "/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "inference_model_info":
                out[sample.labels["version"]] = sample.value
            elif sample.name == "inference_model_reloads_total" and sample.labels["result"] == "ok":
                out["reloads_ok"] = sample.value
    return out


def test_every_worker_hot_reloads_the_model(tmp_path: Path) -> None:
    bundled = ROOT / "voiceflow" / "models" / "ge2e.onnx"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    shutil.copy(bundled, model_dir / "model.onnx")
    meta = json.loads(bundled.with_suffix(".json").read_text())
    (model_dir / "model.json").write_text(json.dumps({**meta, "version": "v-old"}))
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with two_workers(metrics_dir, VOICEFLOW_MODEL_PATH=str(model_dir), VOICEFLOW_RELOAD_POLL_SECONDS="0.2") as srv:
        assert model_info(srv) == {"v-old": 1.0, "reloads_ok": 0.0}
        new = model_dir / ".model.json.tmp"  # written aside then renamed, as a volume update does
        new.write_text(json.dumps({**meta, "version": "v-new"}))
        os.replace(new, model_dir / "model.json")
        deadline = time.monotonic() + 60
        while model_info(srv).get("reloads_ok", 0.0) < 2:  # counted by each of the two workers
            assert time.monotonic() < deadline, f"not every worker reloaded: {model_info(srv)}"
            time.sleep(0.3)
        # the merged view: the new version is served (max over workers), the old one by none
        assert model_info(srv) == {"v-old": 0.0, "v-new": 1.0, "reloads_ok": 2.0}
        for _ in range(6):  # whichever worker answers
            assert httpx.get(srv.http + "/ready", timeout=10).json()["model_version"] == "v-new"
