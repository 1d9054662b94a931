"""The FastAPI application: wiring only (context, middleware, routers, start-up and shutdown)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import IntegrityError, OperationalError

from control_api import audit, edge, engine, uploads, users
from control_api.backends import RegistryBackend, make_backend
from control_api.context import AppContext
from control_api.db import make_engine, make_sessionmaker, migrate, session_scope
from control_api.login_guard import InMemoryLoginGuard, LoginGuard, RedisLoginGuard
from control_api.ratelimit import InMemoryRateLimiter, RateLimiter, RedisRateLimiter
from control_api.routes import audit as audit_routes
from control_api.routes import auth, batch, health, models
from control_api.settings import Settings
from control_api.worker import WorkerPool
from voiceflow_edge import servers

log = logging.getLogger(__name__)
MULTIPART_SLACK_BYTES = 1 << 20  # boundaries and form fields around the files themselves


def build_context(
    settings: Settings,
    *,
    diarize: engine.DiarizeFn | None = None,
    validate_audio: engine.AudioValidator | None = None,
    backend: RegistryBackend | None = None,
) -> AppContext:
    db_engine = make_engine(settings)
    redis_client = None
    limiter: RateLimiter
    guard: LoginGuard
    if settings.redis_url:
        import redis

        redis_client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        limiter = RedisRateLimiter(
            redis_client, settings.rate_limit, settings.rate_limit_window_s, settings.redis_prefix
        )
        guard = RedisLoginGuard(redis_client, settings.redis_prefix)
    else:
        limiter = InMemoryRateLimiter(settings.rate_limit, settings.rate_limit_window_s)
        guard = InMemoryLoginGuard()
    engine.use_active_model_dir(settings.effective_active_model_dir)
    return AppContext(
        settings=settings,
        engine=db_engine,
        sessions=make_sessionmaker(db_engine),
        limiter=limiter,
        backend=backend
        or make_backend(
            settings.registry_mode,
            namespace=settings.k8s_namespace,
            active_model_dir=settings.effective_active_model_dir,
        ),
        diarize=diarize or engine.load_callable(settings.diarize_fn),
        validate_audio=validate_audio or engine.engine_validate_audio,
        jwt_secret=settings.resolved_jwt_secret(),
        login_guard=guard,
        redis_client=redis_client,
    )


def prepare(ctx: AppContext) -> None:
    """Migrate the schema and create the first admin: idempotent, safe from several processes at once."""
    ctx.settings.storage_dir.mkdir(parents=True, exist_ok=True)
    for leftover in uploads.sweep_staging(ctx.settings.storage_dir):
        log.warning("removed %s: a staging folder left by an interrupted upload", leftover)
    try:
        migrate(ctx.engine)
    except OperationalError:
        # SQLite has no advisory lock: a second process starting at the same moment can trip over the
        # first one's half-made schema. By now that one has finished; its work is simply redone.
        time.sleep(1.0)
        migrate(ctx.engine)
    try:
        with session_scope(ctx.sessions) as session:
            if users.ensure_admin(session, ctx.settings.admin_username, ctx.settings.resolved_admin_password()):
                log.info("created admin user %r", ctx.settings.admin_username)
    except IntegrityError:
        pass  # another process created the admin between our check and our insert
    except ValueError as exc:
        raise RuntimeError(f"cannot create the admin from VOICEFLOW_ADMIN_USERNAME/PASSWORD: {exc}") from exc


def create_app(settings: Settings | None = None, *, context: AppContext | None = None) -> FastAPI:
    ctx = context or build_context(settings or Settings.from_env())
    servers.install_log_redaction()  # here: every uvicorn worker process builds its app through this

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare(ctx)
        pool = None
        if ctx.settings.embedded_workers > 0:
            pool = WorkerPool(
                ctx.sessions,
                ctx.settings,
                ctx.diarize,
                ctx.backend,
                batch_workers=ctx.settings.embedded_workers,
            )
            pool.start()
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()
            ctx.engine.dispose()

    # /docs and /redoc from assets shipped in the package, not a CDN: air-gapped clusters get them too;
    # no validator badge either (it would call validator.swagger.io).
    app = FastAPIOffline(
        swagger_ui_parameters={"validatorUrl": None},
        title="VoiceFlow Control API",
        version="0.1.0",
        description="Model registry, batch diarization jobs, authentication, rate limits and audit.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    policy = edge.EdgePolicy(
        upload_body_bytes=ctx.settings.max_upload_bytes * ctx.settings.max_files_per_job + MULTIPART_SLACK_BYTES,
        jwt_secret=ctx.jwt_secret,
        jwt_algorithm=ctx.settings.jwt_algorithm,
    )
    app.add_middleware(audit.AuditAndLimitMiddleware, factory=ctx.sessions, policy=policy)
    for router in (health.router, auth.router, models.router, batch.router, audit_routes.router):
        app.include_router(router)
    return app
