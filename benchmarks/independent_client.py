"""An independent client for the inference pod: N real-time streams over `/ws/stream`, measured
with nothing of the pod's or the load generator's code (threads and the `websocket-client`
library instead of asyncio and `websockets`; its own WAV reading, framing and percentiles).

Each stream is one thread that connects, sends `start`, then 100 ms PCM frames of real speech
(an AMI excerpt read with `soundfile`, from a stream-specific offset) on a
real-time clock, and a reader thread that stamps every result. Latency is the time from sending a
frame to receiving the result that names it (`sequence`). Streams start at random moments within
`--arrival-seconds` (seeded), as independent users would; `--arrival-seconds 0` starts them all
at once.

    .venv/bin/python benchmarks/independent_client.py --streams 16 64 --seconds 30
    .venv/bin/python benchmarks/independent_client.py --url ws://127.0.0.1:3000/ws/stream --streams 64

Without --url it starts a pod (`python -m inference_pod`, benchmarks/pod_process.py: the only
shared piece, and it only launches the process). Prints figures, never asserts on them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile
import websocket

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pod_process import start_pod

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "ami-excerpts"
RATE = 16000


def read_pcm(path: Path) -> bytes:
    """16 kHz mono 16-bit little-endian PCM bytes of a sound file (refuses other rates).

    Read as float and scaled here: libsndfile does not scale a float file read as int16 (the AMI
    excerpts are float WAVs, and came out as silence)."""
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    if rate != RATE:
        raise SystemExit(f"{path}: expected 16 kHz audio, not {rate} Hz")
    return bytes((np.clip(audio[:, 0], -1.0, 1.0) * 32767).astype("<i2").tobytes())


def tree_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process and its descendants so far (/proc; NaN without a pid)."""
    if pid is None:
        return float("nan")
    total, todo, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def nearest_rank(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


class Stream(threading.Thread):
    def __init__(self, url: str, pcm: bytes, seconds: float, frame_ms: int, delay: float) -> None:
        super().__init__(daemon=True)
        self.url, self.pcm, self.delay = url, pcm, delay
        self.frame_bytes = RATE * frame_ms // 1000 * 2
        self.frames = int(seconds * 1000 / frame_ms)
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.answered: set[int] = set()
        self.error: str | None = None

    def run(self) -> None:
        time.sleep(self.delay)
        try:
            ws = websocket.create_connection(self.url, timeout=60)
        except Exception as exc:
            self.error = type(exc).__name__
            return
        try:
            ws.send(json.dumps({"type": "start", "sample_rate": RATE, "encoding": "pcm_s16le"}))
            if json.loads(ws.recv()).get("type") != "ready":
                self.error = "not-ready"
                return
            reader = threading.Thread(target=self.read, args=(ws,), daemon=True)
            reader.start()
            t0 = time.monotonic()
            for i in range(self.frames):
                pause = t0 + i * self.frame_bytes / 2 / RATE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                start = (i * self.frame_bytes) % (len(self.pcm) - self.frame_bytes)
                self.sent[i] = time.monotonic()
                ws.send_binary(self.pcm[start : start + self.frame_bytes])
            ws.send(json.dumps({"type": "end"}))
            reader.join(timeout=60)
        except Exception as exc:
            self.error = self.error or type(exc).__name__
        finally:
            ws.close()

    def read(self, ws: websocket.WebSocket) -> None:
        try:
            while True:
                msg = json.loads(ws.recv())
                now = time.monotonic()
                seq = msg.get("sequence")
                if msg.get("type") == "result" and seq in self.sent and seq not in self.answered:
                    self.answered.add(seq)  # a repeat (the end's result names the last frame again) is not a latency
                    self.latencies.append((now - self.sent[seq]) * 1000.0)
                elif msg.get("type") == "error":
                    self.error = msg.get("code", "error")
                    return
                elif msg.get("type") in ("end", "final", "closed"):
                    return
        except Exception:
            return


def run(
    url: str, n: int, seconds: float, frame_ms: int, arrival: float, pcms: list[bytes], seed: int, pid: int | None
) -> dict:
    rng = random.Random(seed + n)
    cpu0, t0 = tree_cpu_seconds(pid), time.monotonic()
    streams = []
    for i in range(n):
        pcm = pcms[i % len(pcms)]
        offset = rng.randrange(0, len(pcm) // 2) * 2
        streams.append(Stream(url, pcm[offset:] + pcm[:offset], seconds, frame_ms, rng.uniform(0, arrival)))
    for s in streams:
        s.start()
    for s in streams:
        s.join()
    lat = [x for s in streams for x in s.latencies]
    return {
        "streams": n,
        "pod_cpu_percent": 100.0 * (tree_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0),
        "results": len(lat),
        "p50_ms": nearest_rank(lat, 50),
        "p95_ms": nearest_rank(lat, 95),
        "p99_ms": nearest_rank(lat, 99),
        "max_ms": max(lat, default=float("nan")),
        "errors": sorted({s.error for s in streams if s.error}),
        "errored_streams": sum(1 for s in streams if s.error),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running pod's /ws/stream (default: start one)")
    ap.add_argument("--pid", type=int, help="that pod's process id, for its CPU")
    ap.add_argument("--streams", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--frame-ms", type=int, default=100)
    ap.add_argument("--arrival-seconds", type=float, default=1.0, help="streams start at random within this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    pcms = [read_pcm(p) for p in sorted(SPEECH.glob("*.wav"))]
    if not pcms:
        raise SystemExit(f"no speech in {SPEECH}")
    proc = None
    url, pid = args.url, args.pid
    if url is None:
        proc, url = start_pod({"VOICEFLOW_IDLE_TIMEOUT_SECONDS": "600", "VOICEFLOW_MAX_CONNECTIONS": "1100"})
        pid = proc.pid
    rows = []
    try:
        header = f"{'N':>5} {'results':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'pod cpu%':>8}"
        print(header + "  errors", flush=True)
        for n in args.streams:
            r = run(url, n, args.seconds, args.frame_ms, args.arrival_seconds, pcms, args.seed, pid)
            rows.append(r)
            print(
                f"{n:>5} {r['results']:>8} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                f"{r['max_ms']:>8.1f} {r['pod_cpu_percent']:>8.0f}  {','.join(r['errors']) or '-'} "
                f"({r['errored_streams']} streams)",
                flush=True,
            )
            time.sleep(3)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
