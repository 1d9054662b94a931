"""Issue 26's three probes against real servers, with what they cost: `python scripts/security_probes.py`.

Starts `voiceflow serve` and `voiceflow api` on loopback (a temporary state dir, SQLite), then:
  1. decompression bombs to the pod's POST /infer: a FLAC holding 25 minutes at 192 kHz, one whose header
     promises 2^36 frames, and an 8-channel 655 kHz one; reports status and the pod's peak RSS growth;
  2. an anonymous chunked 300 MB multipart upload to the API's /api/inference/batch: reports status,
     how much the client got to send, and what the staging folder holds afterwards;
  3. a NUL byte in the login username: status, and whether the attempt has its audit row.
Prints one JSON object; exits 1 unless every probe got a 4xx.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

VOICEFLOW = str(Path(sys.executable).with_name("voiceflow"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def peak_rss_mb(pid: int) -> float:
    """The largest peak RSS (VmHWM) of the server and its worker processes."""
    peaks = []
    for member in descendants(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        peaks += [int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:")]
    return max(peaks, default=float("nan"))


def start(argv: list[str], url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{argv} did not become ready")


def flac(samples: np.ndarray, rate: int, total_samples: int | None = None) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="FLAC")
    data = bytearray(out.getvalue())
    if total_samples is not None:
        value = int.from_bytes(data[21:26], "big")
        data[21:26] = ((value & ~((1 << 36) - 1)) | total_samples).to_bytes(5, "big")
    return bytes(data)


def probe_pod(env: dict[str, str]) -> dict[str, object]:
    port = free_port()
    env = {**env, "VOICEFLOW_PROCESSES": "1"}  # one serving process: its peak RSS is the cost
    pod = start([VOICEFLOW, "serve", "--port", str(port)], f"http://127.0.0.1:{port}/ready", env)
    try:
        results: dict[str, object] = {"peak_rss_at_start_mb": round(peak_rss_mb(pod.pid))}
        # Silence with a short tone each minute: compresses ~1000:1 like the 895 KB file.
        long = np.zeros(25 * 60 * 192000, np.float32)
        tone = (0.3 * np.sin(np.arange(192000) * 2 * np.pi * 220 / 192000)).astype(np.float32)
        for minute in range(25):
            long[minute * 60 * 192000 : minute * 60 * 192000 + 192000] = tone
        long_192k = flac(long, 192000)
        bombs = {
            "flac_25min_192khz": long_192k,
            "flac_header_promises_2^36_frames": flac(np.zeros(16000, np.float32), 16000, (1 << 36) - 1),
            "flac_8ch_655khz_3h_header": flac(np.zeros((4096, 8), np.float32), 655350, 655350 * 3 * 3600),
        }
        for name, body in bombs.items():
            before = peak_rss_mb(pod.pid)
            r = httpx.post(
                f"http://127.0.0.1:{port}/infer", content=body, headers={"Content-Type": "audio/flac"}, timeout=600
            )
            results[name] = {
                "bytes": len(body),
                "status": r.status_code,
                "code": _code(r) if r.status_code >= 400 else None,
                "peak_rss_growth_mb": round(peak_rss_mb(pod.pid) - before),
            }
        results["peak_rss_mb"] = round(peak_rss_mb(pod.pid))
        return results
    finally:
        pod.terminate()
        pod.wait(30)


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code"))
    except ValueError:  # a bare 500 page
        return response.text[:60]


def chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    yield b"--xyz\r\nContent-Disposition: form-data; name=files; filename=a.wav\r\n\r\nRIFF"
    sent = 0
    while sent < total:
        yield b"\0" * size
        sent += size


def probe_api(env: dict[str, str], state: Path) -> dict[str, object]:
    port = free_port()
    env = {**env, "VOICEFLOW_STATE_DIR": str(state), "VOICEFLOW_EMBEDDED_WORKERS": "0"}
    api = start([VOICEFLOW, "api", "--port", str(port)], f"http://127.0.0.1:{port}/health", env)
    base = f"http://127.0.0.1:{port}"
    try:
        results: dict[str, object] = {}
        sent = 0

        def counted() -> Iterator[bytes]:
            nonlocal sent
            for chunk in chunks(300 * 1024 * 1024):
                sent += len(chunk)
                yield chunk

        began = time.monotonic()
        try:
            r = httpx.post(
                f"{base}/api/inference/batch",
                content=counted(),
                headers={"Content-Type": "multipart/form-data; boundary=xyz"},
                timeout=120,
            )
            status: int | str = r.status_code
        except httpx.HTTPError as exc:  # the server answered and closed while the body was still coming
            status = f"closed: {type(exc).__name__}"
        staging = state / "storage" / "staging"
        stored = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file()) if staging.exists() else 0
        results["anonymous_chunked_300mb_upload"] = {
            "status": status,
            "client_sent_mb": round(sent / 2**20, 1),
            "seconds": round(time.monotonic() - began, 2),
            "staging_bytes_after": stored,
            "api_peak_rss_mb": round(peak_rss_mb(api.pid)),
        }
        r = httpx.post(f"{base}/auth/login", json={"username": "adm\u0000in", "password": "x"}, timeout=30)
        admin = httpx.post(
            f"{base}/auth/login", json={"username": "admin", "password": env["VOICEFLOW_ADMIN_PASSWORD"]}, timeout=30
        ).json()["access_token"]
        rows = httpx.get(f"{base}/api/audit", headers={"Authorization": f"Bearer {admin}"}, timeout=30).json()
        audited = [e for e in rows if e["action"] == "POST /auth/login" and e["status_code"] == r.status_code]
        results["nul_in_login_username"] = {
            "status": r.status_code,
            "audit_row": audited[0] if audited else None,
        }
        return results
    finally:
        api.terminate()
        api.wait(30)


def main() -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEFLOW_")}
    env["VOICEFLOW_ADMIN_PASSWORD"] = "probe-admin-password-1"
    with tempfile.TemporaryDirectory() as tmp:
        report = {"pod": probe_pod(env), "api": probe_api(env, Path(tmp) / "state")}
    print(json.dumps(report, indent=2, default=str))
    statuses = [v["status"] for part in report.values() for v in part.values() if isinstance(v, dict)]
    return 0 if all(isinstance(s, int) and 400 <= s < 500 for s in statuses) else 1


if __name__ == "__main__":
    raise SystemExit(main())
