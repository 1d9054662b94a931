"""HTTP and WebSocket routes: thin shells over `Pod`, `StreamConnection` and `protocol`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from inference_pod import engine, protocol
from inference_pod.auth import AuthError, Forbidden, check_permission, extract_token, token_identity, verify_token
from inference_pod.pod import Pod
from inference_pod.protocol import ErrorCode, ProtocolError
from inference_pod.settings import Settings
from inference_pod.stream import StreamConnection
from voiceflow_edge import servers

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"


def _error_body(code: ErrorCode, message: str, status: int, close: bool = False) -> JSONResponse:
    # close: the rest of the request body is never read, so the client must stop sending it.
    headers = {"Connection": "close"} if close else None
    return JSONResponse(protocol.error_message(code, message), status_code=status, headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    pod = Pod(settings or Settings.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pod.start()
        try:
            yield
        finally:
            await pod.stop()

    # /docs and /redoc from assets shipped in the package, not a CDN: air-gapped clusters get them too.
    app = FastAPIOffline(
        title="VoiceFlow inference pod", lifespan=lifespan, swagger_ui_parameters={"validatorUrl": None}
    )
    app.state.pod = pod

    def authorize(headers: Any, query: Any, action: str) -> str | None:
        """Identity of the caller (None when auth is off); AuthError (Forbidden: 403) when refused."""
        if pod.jwt_key is None:
            return None
        token = extract_token(headers, query)
        claims = verify_token(token, pod.jwt_key, pod.settings.jwt_algorithms, pod.settings.jwt_audience)
        check_permission(claims, action)
        return token_identity(claims, token or "")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        if not pod.models.ready or pod.draining:
            reason = "draining" if pod.draining else "model loading"
            return JSONResponse({"status": "not_ready", "reason": reason}, status_code=503)
        m = pod.model
        return JSONResponse(
            {
                "status": "ready",
                "model_version": m.version,
                "model_sha256": m.sha256,
                # The served bundle's identity and parts: a model served without its background
                # mean (or any other part) shows here, not only as worse results.
                "model_bundle_digest": m.bundle_digest,
                "model_bundle_parts": list(m.bundle_parts),
                "model_path": m.path,
                "model_loaded_at": m.loaded_at,
                "pipeline": m.pipeline,
                "segmentation_model_version": m.segmentation_version,
                "segmentation_model_sha256": m.segmentation_sha256,
                "segmentation_model_path": m.segmentation_path,
                "last_reload_error": pod.models.last_error,
                "protocol_version": protocol.PROTOCOL_VERSION,
            }
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = pod.metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        # Browsers ask for it at the root whatever the page links; a 404 there is noise in every log.
        return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.post("/infer")
    async def infer(request: Request) -> JSONResponse:
        received = time.monotonic()
        try:
            authorize(request.headers, request.query_params, "infer")
        except AuthError as exc:
            pod.metrics.errors.labels(code="unauthorized").inc()
            return _error_body(ErrorCode.UNAUTHORIZED, str(exc), _auth_status(exc))
        if pod.draining:
            return _error_body(ErrorCode.SHUTTING_DOWN, "server shutting down", 503)
        if pod.overloaded() or pod.infer_requests >= pod.settings.max_infer_requests:
            pod.metrics.errors.labels(code="overloaded").inc()
            return _error_body(ErrorCode.OVERLOADED, "server overloaded; retry later", 503)
        pod.infer_requests += 1
        try:
            return await _infer(request, received)
        finally:
            pod.infer_requests -= 1

    async def _infer(request: Request, received: float) -> JSONResponse:
        declared = request.headers.get("content-length")
        length = protocol.decimal_int(declared) if declared else None
        if length is not None and length > pod.settings.max_infer_bytes:
            return _error_body(ErrorCode.FRAME_TOO_LARGE, "request body too large", 413, close=True)
        body = bytearray()
        chunks = request.stream().__aiter__()
        while True:
            try:
                # A body that stops arriving is abandoned: it would hold an /infer slot forever.
                chunk = await asyncio.wait_for(chunks.__anext__(), servers.BODY_IDLE_S)
            except StopAsyncIteration:
                break
            except TimeoutError:
                return _error_body(ErrorCode.IDLE_TIMEOUT, "request body stalled", 408, close=True)
            body.extend(chunk)
            if len(body) > pod.settings.max_infer_bytes:
                return _error_body(ErrorCode.FRAME_TOO_LARGE, "request body too large", 413, close=True)
        try:
            # Parsing a large JSON body or decoding audio is CPU work: keep it off the event loop.
            audio = await pod.run_infer(_infer_audio, bytes(body), request.headers.get("content-type", ""))
            num_speakers = _optional_int(request.query_params.get("num_speakers"))
        except ProtocolError as exc:
            pod.metrics.errors.labels(code=exc.code.value).inc()
            return _error_body(exc.code, exc.message, 413 if exc.code is ErrorCode.FRAME_TOO_LARGE else 400)
        model = pod.model
        try:
            segments = await pod.run_infer(model.predict, audio, num_speakers)
        except Exception:
            log.exception("/infer failed")
            pod.metrics.errors.labels(code="internal_error").inc()
            return _error_body(ErrorCode.INTERNAL_ERROR, "internal error while diarizing", 500)
        latency = time.monotonic() - received
        pod.metrics.latency.labels(endpoint="infer").observe(latency)
        pod.metrics.requests.labels(endpoint="infer").inc()
        return JSONResponse(
            {
                "segments": [protocol.segment_dict(s) for s in segments],
                "duration": audio.size / engine.ENGINE_SAMPLE_RATE,
                "latency_ms": round(latency * 1000.0, 3),
                "model_version": model.version,
                "model_bundle_digest": model.bundle_digest,
                "pipeline": model.pipeline,
            }
        )

    @app.websocket("/ws/stream")
    async def stream(ws: WebSocket) -> None:
        refusal = _admit(pod, ws, authorize)
        if refusal is not None:
            pod.metrics.errors.labels(code=refusal[0].value).inc()
            await ws.send_denial_response(_error_body(*refusal))
            return
        identity = ws.scope.get("voiceflow.identity")
        await ws.accept()
        pod.metrics.connections.inc()
        conn: StreamConnection | None = None
        try:
            try:
                config = protocol.config_from_query(ws.query_params)
            except ProtocolError as exc:
                pod.metrics.errors.labels(code=exc.code.value).inc()
                await ws.send_text(json.dumps(protocol.error_message(exc.code, exc.message)))
                await ws.close(exc.close_code, exc.message[:120])
                return
            conn = StreamConnection(ws, pod, config)
            pod.connections.add(conn)
            await conn.run()
        finally:
            if conn is not None:
                pod.connections.discard(conn)
                pod.stream_ended()
            pod.metrics.connections.dec()
            if identity is not None:
                pod.token_limits.release(identity)

    return app


def _admit(pod: Pod, ws: WebSocket, authorize: Any) -> tuple[ErrorCode, str, int] | None:
    """Refuse before the handshake (nothing is read from a refused client), or None to accept."""
    if pod.draining:
        return ErrorCode.SHUTTING_DOWN, "server shutting down; reconnect to another pod", 503
    try:
        identity = authorize(ws.headers, ws.query_params, "stream")
    except AuthError as exc:
        return ErrorCode.UNAUTHORIZED, str(exc), _auth_status(exc)
    if len(pod.connections) >= pod.settings.max_connections:
        return (
            ErrorCode.TOO_MANY_CONNECTIONS,
            f"pod at its {pod.settings.max_connections} connection limit",
            503,
        )
    if pod.overloaded():
        return ErrorCode.OVERLOADED, "server overloaded; retry later", 503
    if identity is not None:
        if not pod.token_limits.acquire(identity):
            return (
                ErrorCode.TOO_MANY_CONNECTIONS,
                f"this token already has {pod.settings.max_connections_per_token} open streams",
                429,
            )
        ws.scope["voiceflow.identity"] = identity
    return None


def _auth_status(exc: AuthError) -> int:
    return 403 if isinstance(exc, Forbidden) else 401


def _optional_int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    number = protocol.decimal_int(value)
    if number is None or not 0 < number <= 64:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"num_speakers must be an integer 1-64, got {value!r}")
    return number


def _infer_audio(body: bytes, content_type: str) -> np.ndarray:
    """The /infer body as 16 kHz float32: a JSON float array (or {data, sample_rate}) or an audio file."""
    if not body:
        raise ProtocolError(ErrorCode.INVALID_AUDIO, "empty request body")
    if "json" in content_type:
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(ErrorCode.MALFORMED_JSON, f"body is not valid JSON: {exc}") from None
        if isinstance(obj, list):
            obj = {"data": obj}
        if not isinstance(obj, dict):
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "JSON body must be an array or {data, sample_rate}")
        samples = protocol.parse_float_array(obj.get("data"))
        rate = protocol.validate_sample_rate(obj.get("sample_rate", engine.ENGINE_SAMPLE_RATE))
        if rate != engine.ENGINE_SAMPLE_RATE:
            samples = soxr.resample(samples, rate, engine.ENGINE_SAMPLE_RATE).astype(np.float32)
        return samples
    try:
        return engine.decode_audio_bytes(body)
    except engine.audio_too_large_types() as exc:
        raise ProtocolError(ErrorCode.FRAME_TOO_LARGE, str(exc)) from None
    except engine.audio_error_types() as exc:
        message = str(exc).splitlines()[0] if str(exc) else "not a readable audio file"
        raise ProtocolError(ErrorCode.INVALID_AUDIO, message) from None
