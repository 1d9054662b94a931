"""`voiceflow serve`: uvicorn with a graceful, stream-aware SIGTERM.

Plain uvicorn answers SIGTERM by failing every WebSocket with 1012 at once, dropping whatever
audio was queued. Here the first SIGTERM/SIGINT first drains the pod (refuse new streams, mark
not-ready, let each stream finish its queued audio and get its `final`, close 1012) within the
grace period, and only then lets uvicorn shut down. A second signal skips the wait.
"""

from __future__ import annotations

import asyncio
import logging
from types import FrameType
from typing import Any

import uvicorn

from inference_pod.pod import Pod
from inference_pod.server import create_app
from inference_pod.settings import Settings
from voiceflow_edge import servers

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, pod: Pod, grace_seconds: float) -> None:
        super().__init__(config)
        self.pod = pod
        self.grace_seconds = grace_seconds
        self._drain_started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None  # referenced so it is not collected mid-drain

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Called from the signal handler: only schedule work on the loop here.
        if self._drain_started or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._drain_started = True
        log.info("signal %s: draining streams before shutdown", sig)
        loop = self._loop

        def start_drain() -> None:
            self._drain_task = loop.create_task(self._drain_then_exit(sig, frame))

        loop.call_soon_threadsafe(start_drain)

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        try:
            await self.pod.drain(self.grace_seconds)
        except Exception:
            log.exception("drain failed; shutting down anyway")
        finally:
            super().handle_exit(sig, frame)


class _DenialNoiseFilter(logging.Filter):
    """uvicorn's sans-io WebSocket protocol logs an ERROR after every denial response (it only
    counts an accepted handshake as complete). Refusals are deliberate and already counted in
    `inference_errors_total`, so drop that one line rather than page anybody."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing handshake" not in record.getMessage()


def build_server(settings: Settings) -> DrainingServer:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws="websockets-sansio",
        # uvicorn's own cap sits above ours, so an oversized frame normally gets our clear
        # `frame_too_large` error (1009) rather than a bare protocol close.
        ws_max_size=max(4 * max(settings.max_frame_bytes, settings.max_text_frame_bytes), 1 << 20),
        # No permessage-deflate: PCM audio barely compresses and results are small, so inflating
        # every frame (which clients negotiate by default) was pure CPU, ~8% of a loaded event loop.
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=5,
        lifespan="on",
        **servers.uvicorn_options(),  # header and keep-alive timeouts, header size cap
    )
    uvicorn_log = logging.getLogger("uvicorn.error")  # after Config: it (re)configures logging
    if not any(isinstance(f, _DenialNoiseFilter) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_DenialNoiseFilter())
    servers.install_log_redaction()
    problems = servers.exposure_problems(settings.host, {"VOICEFLOW_JWT_KEY": app.state.pod.jwt_key}, {})
    if problems:
        raise ValueError(f"refusing to listen on {settings.host}: {'; '.join(problems)}")
    if app.state.pod.jwt_key is None and not servers.is_loopback(settings.host):
        log.warning(
            "AUTHENTICATION IS OFF and the pod listens on %s: anyone who can reach it may stream and infer. "
            "Set VOICEFLOW_JWT_KEY (or VOICEFLOW_JWT_KEY_FILE), or bind 127.0.0.1.",
            settings.host,
        )
    return DrainingServer(config, app.state.pod, grace_seconds=settings.shutdown_grace_seconds)


def serve(settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from inference_pod import workers  # it imports this module's build_server in each worker

    processes = workers.resolve_processes(settings.processes)
    if processes > 1:
        return workers.supervise(settings, processes)
    try:
        server = build_server(settings)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    server.run()
    return 0
