"""Load generator for the inference pod: N concurrent real-time streams of real speech over loopback.

Prints, per N: P50/P95/P99 result latency (client clock: binary frame sent -> the result naming
that frame received), results and audio seconds per second, the pod's CPU (% of one core, all its
processes) and memory, the CPU it spent per second of audio per stream split into VAD, embedding,
segmentation network, clustering (everything an engine thread does itself) and I/O (the rest:
WebSockets, protocol, JSON), and streams shed (`overloaded`) or errored. Then the largest N held
under 100 ms P99, a scaling plot (PNG) and the pod's memory with 1000 idle connections.

Memory is the proportional set size (PSS) summed over the pod's processes: with several workers
forked from one supervisor, RSS would count their shared libraries once per process.

    .venv/bin/python benchmarks/loadgen.py         # starts its own pod (python -m inference_pod)
    .venv/bin/python benchmarks/loadgen.py --streams 1 16 --seconds 20 --idle 0
    .venv/bin/python benchmarks/loadgen.py --workers 1   # one pod process (threads only), to compare
    .venv/bin/python benchmarks/loadgen.py --url ws://host:3000/ws/stream --pid PID
    .venv/bin/python benchmarks/loadgen.py --pipeline segmentation --streams 16 64 --seconds 20 --idle 0

The started pod serves `--pipeline` (default: VOICEFLOW_PIPELINE if set, else the pod's default);
with `segmentation` its model is `--segmentation-model`, else VOICEFLOW_SEGMENTATION_MODEL_PATH,
else the bundled one, else the newest under runs/ (until one is bundled).

Prints figures, never asserts on them (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pod_process import segmentation_model_file  # noqa: E402
from pod_process import start_pod as start_pod_process  # noqa: E402

from pipelines.evaluation.machine import describe  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ami-excerpts"
SR = 16000


@dataclass
class StreamStats:
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)  # the pod's own latency_ms (receive -> send)
    results: int = 0
    audio_seconds: float = 0.0
    error: str | None = None
    close_code: int | None = None


def load_speech() -> list[np.ndarray]:
    sys.path.insert(0, str(ROOT))
    from voiceflow.audio import load_audio

    files = sorted(DATA.glob("*.wav"))
    if not files:
        raise SystemExit(f"no speech found in {DATA}")
    return [load_audio(f) for f in files]


def pod_pids(pid: int) -> list[int]:
    """The pod's process and all its descendants (a multi-worker pod's supervisor and workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
    return out


def proc_cpu_seconds(pid: int) -> float:
    """CPU seconds of the pod's live processes (a worker restarted mid-run loses its past share)."""
    total = 0.0
    for p in pod_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def proc_rss_mb(pid: int, key: str = "Pss") -> float:
    """Memory of the pod's processes, summed: `Pss` (default) from smaps_rollup, or a
    /proc/PID/status field such as `VmRSS` / `VmHWM`."""
    total = 0.0
    for p in pod_pids(pid):
        path = Path(f"/proc/{p}/smaps_rollup" if key == "Pss" else f"/proc/{p}/status")
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith(key + ":")) / 1024.0
    return total


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


async def one_stream(url: str, audio: np.ndarray, seconds: float, frame_s: float, stats: StreamStats) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    frame = int(frame_s * SR)
    total = int(seconds * SR)
    pcm = (np.clip(np.resize(audio, total), -1, 1) * 32767).astype("<i2")
    sent_at: dict[int, float] = {}
    try:
        async with connect(url, max_size=None, open_timeout=60, ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": SR, "encoding": "pcm_s16le"}))
            await ws.recv()  # ready

            async def sender() -> None:
                t0 = time.monotonic()
                for i, start in enumerate(range(0, total, frame)):
                    delay = t0 + start / SR - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    sent_at[i] = time.monotonic()
                    await ws.send(pcm[start : start + frame].tobytes())
                    stats.audio_seconds += frame_s
                await ws.send(json.dumps({"type": "end"}))

            task = asyncio.create_task(sender())
            try:
                async for raw in ws:
                    now = time.monotonic()
                    msg = json.loads(raw)
                    if msg["type"] == "result":
                        stats.results += 1
                        stats.server_ms.append(float(msg["latency_ms"]))
                        t = sent_at.get(msg["sequence"])
                        if t is not None:
                            stats.latencies_ms.append((now - t) * 1000.0)
                    elif msg["type"] == "error":
                        stats.error = msg["code"]
            except ConnectionClosed:
                pass
            finally:
                task.cancel()
            stats.close_code = ws.close_code
    except Exception as exc:  # a refused or broken connection is a result, not a crash of the bench
        stats.error = stats.error or type(exc).__name__


async def wait_admitting(url: str, timeout: float = 60.0) -> None:
    """After an overload run the pod refuses new streams until its delay signal decays; wait."""
    from websockets.asyncio.client import connect

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with connect(url, open_timeout=10):
                return
        except Exception:
            await asyncio.sleep(0.5)


SEG_BATCH = "inference_segmentation_batch_size"
STAGES = ("vad", "embedding", "segmentation", "clustering")


def metrics_text(url: str) -> str:
    import urllib.request

    http = url.replace("ws://", "http://").split("/ws/")[0]
    with urllib.request.urlopen(http + "/metrics", timeout=10) as r:
        return str(r.read().decode())


def stage_cpu(url: str) -> dict[str, float]:
    """CPU seconds the pod's engine spent so far per stage (inference_engine_cpu_seconds_total)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = dict.fromkeys(STAGES, 0.0)
    for family in text_string_to_metric_families(metrics_text(url)):
        if family.name == "inference_engine_cpu_seconds":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("stage") in out:
                    out[sample.labels["stage"]] = sample.value
    return out


def batch_counters(url: str, family_name: str = "inference_embedding_batch_size") -> tuple[float, float]:
    """(rows batched, model calls) so far, from one of the pod's batch-size histograms: windows
    per embedding call, or (`inference_segmentation_batch_size`) chunks per segmentation call."""
    from prometheus_client.parser import text_string_to_metric_families

    total = calls = 0.0
    for family in text_string_to_metric_families(metrics_text(url)):
        if family.name == family_name:
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    total = sample.value
                elif sample.name.endswith("_count"):
                    calls = sample.value
    return total, calls


def step_seconds() -> float:
    from voiceflow import STREAM_FEED_SAMPLES

    return STREAM_FEED_SAMPLES / SR


async def run_streams(
    url: str,
    n: int,
    seconds: float,
    frame_s: float,
    speech: list[np.ndarray],
    pid: int | None,
    stagger: bool = True,
):
    await wait_admitting(url)
    windows0, calls0 = batch_counters(url)
    chunks0, seg_calls0 = batch_counters(url, SEG_BATCH)
    stages0 = stage_cpu(url)
    stats = [StreamStats() for _ in range(n)]
    cpu0 = proc_cpu_seconds(pid) if pid else 0.0
    client_cpu0 = time.process_time()
    peak_mem = [0.0]

    async def sample_memory() -> None:
        while pid:
            peak_mem[0] = max(peak_mem[0], proc_rss_mb(pid))
            await asyncio.sleep(2.0)

    sampler = asyncio.create_task(sample_memory())
    t0 = time.monotonic()
    tasks = []
    for i in range(n):
        audio = speech[i % len(speech)]
        offset = (i * 7919) % max(1, audio.size - SR)  # different speech per stream
        tasks.append(asyncio.create_task(one_stream(url, np.roll(audio, -offset), seconds, frame_s, stats[i])))
        if stagger:
            # Streams that start at independent times step at independent phases: spread the
            # starts over one engine step. `aligned` starts them together, the worst case, where
            # every stream's step lands in the same instant.
            await asyncio.sleep(step_seconds() / max(1, n))
    await asyncio.gather(*tasks)
    sampler.cancel()
    wall = time.monotonic() - t0
    cpu = (proc_cpu_seconds(pid) - cpu0) if pid else float("nan")
    client_cpu = time.process_time() - client_cpu0
    lat = [x for s in stats for x in s.latencies_ms]
    windows1, calls1 = batch_counters(url)
    chunks1, seg_calls1 = batch_counters(url, SEG_BATCH)
    stages1 = stage_cpu(url)
    audio_total = max(1e-9, sum(s.audio_seconds for s in stats))
    # CPU ms per second of audio of one stream, by stage; I/O is the pod's CPU the engine stages
    # do not account for (event loops, WebSockets, the protocol, JSON).
    split = {f"{k}_ms": 1000.0 * (stages1[k] - stages0[k]) / audio_total for k in STAGES}
    split["io_ms"] = 1000.0 * cpu / audio_total - sum(split.values()) if pid else float("nan")
    return {
        **split,
        "shed_streams": sum(1 for s in stats if s.error == "overloaded"),
        "client_cpu_percent": 100.0 * client_cpu / wall,
        "peak_mem_mb": peak_mem[0],
        "mean_embed_batch": (windows1 - windows0) / max(1.0, calls1 - calls0),
        # 0 with the embedding pipeline (no segmentation network)
        "mean_segment_batch": (chunks1 - chunks0) / max(1.0, seg_calls1 - seg_calls0),
        "streams": n,
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "mean_ms": statistics.fmean(lat) if lat else float("nan"),
        "server_p50_ms": percentile([x for s in stats for x in s.server_ms], 50),
        "server_p99_ms": percentile([x for s in stats for x in s.server_ms], 99),
        "results_per_s": sum(s.results for s in stats) / wall,
        "audio_s_per_s": sum(s.audio_seconds for s in stats) / wall,
        "cpu_percent": 100.0 * cpu / wall if pid else float("nan"),
        # CPU the pod spent per second of audio it took in: robust to other load on the machine,
        # so `cores / cpu_per_audio_s` estimates how many real-time streams a quiet pod sustains.
        "cpu_ms_per_audio_s": 1000.0 * cpu / max(1e-9, sum(s.audio_seconds for s in stats)) if pid else float("nan"),
        "mem_mb": proc_rss_mb(pid) if pid else float("nan"),
        "errors": sorted({s.error for s in stats if s.error}),
        "errored_streams": sum(1 for s in stats if s.error),
        "completed_streams": sum(1 for s in stats if s.close_code == 1000),
        "wall_s": wall,
    }


async def run_idle(url: str, n: int, pid: int | None, hold_s: float = 5.0):
    from websockets.asyncio.client import connect

    await wait_admitting(url)
    rss0 = proc_rss_mb(pid) if pid else float("nan")
    conns = []
    failures = 0
    for i in range(n):
        try:
            ws = await connect(url, open_timeout=60, ping_interval=None)
            await ws.send(json.dumps({"type": "start", "sample_rate": SR}))
            conns.append(ws)
        except Exception:
            failures += 1
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    for ws in conns:
        await ws.recv()  # every one got `ready`
    await asyncio.sleep(hold_s)
    rss = proc_rss_mb(pid) if pid else float("nan")
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    return {
        "idle_connections": len(conns),
        "failures": failures,
        "rss_before_mb": rss0,
        "rss_mb": rss,
        "per_connection_kb": (rss - rss0) * 1024 / max(1, len(conns)),
    }


def start_pod(
    workers: int | None,
    pipeline: str | None = None,
    segmentation_model: str | None = None,
    threads: int | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    env = {"VOICEFLOW_IDLE_TIMEOUT_SECONDS": "600", "VOICEFLOW_MAX_CONNECTIONS": "1100"}
    if workers:
        env["VOICEFLOW_PROCESSES"] = str(workers)
    if threads:
        env["VOICEFLOW_WORKERS"] = str(threads)
    if pipeline:
        env["VOICEFLOW_PIPELINE"] = pipeline
    if (pipeline or os.environ.get("VOICEFLOW_PIPELINE")) == "segmentation":
        seg = segmentation_model_file(segmentation_model)
        if seg is None:
            raise SystemExit("no segmentation model: give --segmentation-model or VOICEFLOW_SEGMENTATION_MODEL_PATH")
        env["VOICEFLOW_SEGMENTATION_MODEL_PATH"] = seg
    return start_pod_process(env)


def served_pipeline(url: str) -> str:
    """What the pod says it serves (its /ready), for the report."""
    import urllib.request

    http = url.replace("ws://", "http://").replace("wss://", "https://").rsplit("/ws/", 1)[0]
    try:
        with urllib.request.urlopen(http + "/ready", timeout=5) as r:
            ready = json.loads(r.read())
    except (OSError, ValueError):
        return "unknown"
    seg = ready.get("segmentation_model_version")
    return f"{ready.get('pipeline', 'embedding')}" + (f" (segmentation model {seg})" if seg else "")


def largest_held(runs: list[dict[str, Any]], p99_ms: float) -> int | None:
    """The largest N measured whose P99 stayed under `p99_ms` with no stream shed or errored."""
    held = [r["streams"] for r in runs if r["p99_ms"] < p99_ms and not r["errored_streams"]]
    return max(held) if held else None


def plot(runs: list[dict[str, Any]], pipeline: str, path: str) -> None:
    """Latency percentiles and the CPU split per stream against the number of streams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["streams"] for r in runs]
    fig, (lat, cpu) = plt.subplots(1, 2, figsize=(11, 4.2))
    for q, style in (("p50", "-o"), ("p95", "-s"), ("p99", "-^")):
        lat.plot(ns, [r[f"{q}_ms"] for r in runs], style, label=q.upper())
    lat.axhline(100, color="grey", ls="--", lw=1, label="100 ms")
    lat.set(xscale="log", yscale="log", xlabel="concurrent real-time streams", ylabel="result latency (ms)")
    lat.set_xticks(ns, [str(n) for n in ns])
    for r in runs:
        if r["shed_streams"] or r["errored_streams"]:
            lat.annotate(f"{r['errored_streams']} shed/err", (r["streams"], r["p99_ms"]), fontsize=8)
    lat.legend()
    bottom = np.zeros(len(runs))
    for key in (*STAGES, "io"):
        values = np.array([max(0.0, r[f"{key}_ms"]) for r in runs])
        cpu.bar([str(n) for n in ns], values, bottom=bottom, label=key)
        bottom += values
    cpu.set(xlabel="concurrent real-time streams", ylabel="pod CPU ms per audio second per stream")
    cpu.legend(fontsize=8)
    fig.suptitle(f"inference pod, {os.cpu_count()} CPUs: {pipeline}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an already running pod (default: start one)")
    ap.add_argument("--pid", type=int, help="that pod's process id, for CPU and RSS")
    ap.add_argument("--streams", type=int, nargs="*", default=[1, 16, 64, 128, 256], help="stream counts (none = skip)")
    ap.add_argument("--seconds", type=float, default=30.0, help="audio per stream")
    ap.add_argument("--frame-ms", type=int, default=100)
    ap.add_argument("--idle", type=int, default=1000, help="idle connections to hold (0 = skip)")
    ap.add_argument(
        "--workers", type=int, default=None, help="worker processes of the started pod (default: one per CPU)"
    )
    ap.add_argument("--threads", type=int, default=None, help="engine threads per worker (VOICEFLOW_WORKERS)")
    ap.add_argument("--plot", default=None, help="write the scaling plot (PNG) here")
    ap.add_argument(
        "--pipeline",
        choices=("embedding", "segmentation"),
        default=None,
        help="VOICEFLOW_PIPELINE for the started pod (default: the environment's, else the pod's default)",
    )
    ap.add_argument("--segmentation-model", default=None, help="segmentation .onnx for --pipeline segmentation")
    ap.add_argument(
        "--start",
        choices=("staggered", "aligned"),
        default="staggered",
        help="staggered: stream starts spread over one engine step (independent arrivals); "
        "aligned: all at once, so every stream steps in the same instant (the worst case)",
    )
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    proc = None
    url, pid = args.url, args.pid
    if url is None:
        proc, url = start_pod(args.workers, args.pipeline, args.segmentation_model, args.threads)
        pid = proc.pid
    speech = load_speech()
    report: dict[str, object] = {"cpus": os.cpu_count(), "url": url, "loadavg_before": os.getloadavg()}
    report["pipeline"] = served_pipeline(url)
    report["machine"] = describe("load average before")  # the CPU the figures belong to, in --json too
    print(f"machine: {report['machine']}", flush=True)
    print(f"pipeline: {report['pipeline']}, starts {args.start}", flush=True)
    report["start"] = args.start
    try:
        columns = [
            ("N", "streams", "{:>5}"),
            ("p50 ms", "p50_ms", "{:>8.1f}"),
            ("p95 ms", "p95_ms", "{:>8.1f}"),
            ("p99 ms", "p99_ms", "{:>8.1f}"),
            ("srv p50", "server_p50_ms", "{:>8.1f}"),
            ("srv p99", "server_p99_ms", "{:>8.1f}"),
            ("res/s", "results_per_s", "{:>7.1f}"),
            ("audio s/s", "audio_s_per_s", "{:>9.1f}"),
            ("cpu %", "cpu_percent", "{:>6.0f}"),
            ("cpu ms/s", "cpu_ms_per_audio_s", "{:>8.1f}"),
            ("vad", "vad_ms", "{:>5.1f}"),
            ("embed", "embedding_ms", "{:>5.1f}"),
            ("segnet", "segmentation_ms", "{:>6.1f}"),
            ("clust", "clustering_ms", "{:>5.1f}"),
            ("io", "io_ms", "{:>5.1f}"),
            ("pss MB", "peak_mem_mb", "{:>7.0f}"),
            ("client%", "client_cpu_percent", "{:>7.0f}"),
            ("batch", "mean_embed_batch", "{:>5.1f}"),
            ("seg b", "mean_segment_batch", "{:>5.1f}"),
            ("done", "completed_streams", "{:>5}"),
            ("shed", "shed_streams", "{:>5}"),
        ]
        width = {
            "{:>5}": 5,
            "{:>5.1f}": 5,
            "{:>6.1f}": 6,
            "{:>7.1f}": 7,
            "{:>9.1f}": 9,
            "{:>6.0f}": 6,
            "{:>7.0f}": 7,
        }
        print(" ".join(f"{h:>{width.get(f, 8)}}" for h, _, f in columns), "errors", flush=True)
        runs = []
        for n in args.streams:
            r = asyncio.run(
                run_streams(url, n, args.seconds, args.frame_ms / 1000.0, speech, pid, args.start == "staggered")
            )
            runs.append(r)
            print(" ".join(f.format(r[k]) for _, k, f in columns), ",".join(r["errors"]) or "-", flush=True)
            time.sleep(2)
        report["streams"] = runs
        held = largest_held(runs, 100.0)
        report["largest_n_under_100ms_p99"] = held
        print(f"largest N held under 100 ms P99 with none shed or errored: {held if held else 'none'}", flush=True)
        print(
            "cpu ms/s = pod CPU per second of audio per stream: vad + embed + segnet (batcher threads) + "
            "clust (engine threads: clustering, VAD rules, buffers) + io (the rest: WebSockets, protocol, JSON)",
            flush=True,
        )
        if args.plot and runs:
            plot(runs, str(report["pipeline"]), args.plot)
            print(f"scaling plot: {args.plot}", flush=True)
        if args.idle:
            idle = asyncio.run(run_idle(url, args.idle, pid))
            report["idle"] = idle
            print(
                f"idle: {idle['idle_connections']} connections (failures {idle['failures']}): pod PSS "
                f"{idle['rss_before_mb']:.0f} -> {idle['rss_mb']:.0f} MB "
                f"({idle['per_connection_kb']:.0f} KB per connection)",
                flush=True,
            )
        if pid:
            report["processes"] = len(pod_pids(pid))
            print(f"pod processes {report['processes']}, memory now {proc_rss_mb(pid):.0f} MB PSS", flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    report["loadavg_after"] = os.getloadavg()
    print(f"load average after {os.getloadavg()[0]:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
