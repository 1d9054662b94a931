"""`voiceflow up`: the whole platform on one machine, embedded — no cluster, SQLite, bundled model.

A small process supervisor: it starts the inference pod (`voiceflow serve`) and the control API
(`voiceflow api`, SQLite under the state dir, in-process rate limits) as child processes, waits
until both report ready, optionally streams the bundled sample conversation through the pod's
WebSocket (`--demo`), and then serves until Ctrl-C / SIGTERM, which it passes on to both.
Child processes (not imports) keep this module free of web frameworks, per the layering.
The pod watches the control API's "active model" folder, so `PUT /api/models/{id}/activate`
hot-reloads it; until something is activated that folder holds the default model (the model
store's promoted bundle when intact, else the packaged default: voiceflow.model_store).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceflow import SAMPLE_CONVERSATION
from voiceflow.registry import PIPELINES
from voiceflow_cli.errors import fail

SAMPLE = SAMPLE_CONVERSATION


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    ready_url: str


def register(subparsers: Any) -> None:
    up = subparsers.add_parser(
        "up",
        help="run the platform embedded: inference pod + control API (SQLite, bundled model)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--host", default="127.0.0.1", help="bind address for both services (default 127.0.0.1)")
    up.add_argument("--pod-port", type=int, default=3000, help="inference pod port (default 3000)")
    up.add_argument("--api-port", type=int, default=8000, help="control API port (default 8000)")
    up.add_argument(
        "--state-dir",
        default=str(Path.home() / ".voiceflow" / "control_api"),
        help="the control API's database, models and uploads (default ~/.voiceflow/control_api)",
    )
    up.add_argument("--demo", action="store_true", help="stream the bundled sample through the pod once ready")
    up.add_argument("--exit-after-demo", action="store_true", help="stop both services after the demo")
    up.add_argument(
        "--ready-timeout", type=float, default=120.0, help="seconds to wait for both services (default 120)"
    )
    up.add_argument(
        "--pipeline",
        choices=PIPELINES,
        help="diarization pipeline the pod serves (sets VOICEFLOW_PIPELINE; default: the engine's)",
    )
    up.set_defaults(handler=run_up)


def plan_services(args: argparse.Namespace, active_dir: Path) -> list[Service]:
    """The two child commands (pure: what would run, for tests and for humans)."""
    exe = [sys.executable, "-m", "voiceflow_cli.main"]
    pod = Service(
        "inference-pod",
        [*exe, "serve", "--host", args.host, "--port", str(args.pod_port), "--model", str(active_dir)],
        f"http://{args.host}:{args.pod_port}/ready",
    )
    api = Service(
        "control-api",
        [*exe, "api", "--host", args.host, "--port", str(args.api_port)],
        f"http://{args.host}:{args.api_port}/health",
    )
    return [pod, api]


SEEDED_MARKER = "seeded.json"  # which bundled default `up` last seeded (vs. a model a user activated)
LEGACY_FILES = ("model.onnx", "model.json")  # what `up` seeded before models moved as bundles


def seed_active_model(active_dir: Path) -> str:
    """Give the pod's watched folder the default bundle (the engine's: a promoted one from the
    model store, else the packaged default) until a model is activated.

    Seeds when the folder serves nothing (or only the loose files older versions copied, which
    lacked the background mean), and re-seeds when the default changed since `up` seeded it (a
    new release, or a promotion), unless a user has activated another model since. Returns what
    it did, for the log."""
    from voiceflow.bundle import BundleError, active_bundle, publish_bundle, verify_bundle
    from voiceflow.embedding import default_model_path

    active_dir.mkdir(parents=True, exist_ok=True)
    default = verify_bundle(default_model_path())
    marker = active_dir / SEEDED_MARKER
    seeded = _read_marker(marker)
    try:
        current = active_bundle(active_dir)
    except BundleError as exc:
        current, why = None, f"re-seeded (the served bundle was damaged: {exc})"
    else:
        why = "seeded"
    if current is not None:
        if current.digest == default.digest:
            return "kept (the bundled default)"
        if seeded != current.digest:
            return "kept (a model activated through the control API)"
        why = "re-seeded (the bundled default changed)"
    publish_bundle(default.model_path, active_dir)
    for name in LEGACY_FILES:
        (active_dir / name).unlink(missing_ok=True)
    marker.write_text(json.dumps({"digest": default.digest, "model": default.model_path.name}) + "\n")
    return f"{why}: {default.model_path.name} bundle {default.digest[:12]}"


def _read_marker(marker: Path) -> str | None:
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("digest")) if isinstance(data, dict) else None


def admin_password(state_dir: Path) -> str:
    """The embedded admin's password: generated once, kept (mode 600) in the state dir."""
    path = state_dir / "admin_password"
    if not path.is_file():
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(18))
    return path.read_text().strip()


def wait_ready(url: str, deadline: float, process: subprocess.Popen[bytes]) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def stop_all(processes: list[subprocess.Popen[bytes]], grace: float = 25.0) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def run_up(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir).expanduser()
    active_dir = state_dir / "active"
    print(f"voiceflow up: active model {seed_active_model(active_dir)}", flush=True)
    env = dict(os.environ)
    env.setdefault("VOICEFLOW_STATE_DIR", str(state_dir))
    env.setdefault("VOICEFLOW_ACTIVE_MODEL_DIR", str(active_dir))
    if getattr(args, "pipeline", None):
        env["VOICEFLOW_PIPELINE"] = args.pipeline
    if "VOICEFLOW_ADMIN_PASSWORD" not in env:
        env["VOICEFLOW_ADMIN_PASSWORD"] = admin_password(state_dir)
        print(f"voiceflow up: control API user 'admin', password in {state_dir / 'admin_password'}", flush=True)
    services = plan_services(args, active_dir)
    processes: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for service in services:
            print(f"voiceflow up: starting {service.name}: {' '.join(service.argv[3:])}", flush=True)
            processes.append(subprocess.Popen(service.argv, env=env))
        deadline = time.monotonic() + args.ready_timeout
        for service, proc in zip(services, processes, strict=True):
            if not wait_ready(service.ready_url, deadline, proc):
                return fail("up", f"{service.name} did not become ready ({service.ready_url})", 1)
        print(
            f"voiceflow up: ready — live page http://{args.host}:{args.pod_port}/ , WebSocket "
            f"ws://{args.host}:{args.pod_port}/ws/stream , control API http://{args.host}:{args.api_port}/docs "
            f"(SQLite in {state_dir})",
            flush=True,
        )
        if args.demo:
            demo = subprocess.run(
                [
                    *services[0].argv[:3],
                    "stream",
                    str(SAMPLE),
                    "--url",
                    f"ws://{args.host}:{args.pod_port}/ws/stream",
                    "--fast",
                ],
                env=env,
                check=False,
            )
            if demo.returncode != 0:
                return fail("up", "the demo stream failed", 1)
            if args.exit_after_demo:
                return 0
        while not stopping:
            for service, proc in zip(services, processes, strict=True):
                if proc.poll() is not None:
                    return fail("up", f"{service.name} exited with {proc.returncode}", 1)
            time.sleep(0.5)
        return 0
    finally:
        stop_all(processes)
