from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from control_api.db import ping
from control_api.deps import CtxDep
from control_api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: the process answers. No authentication, no dependencies checked."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(ctx: CtxDep) -> JSONResponse:
    """Readiness: the database answers, and Redis too when one is configured."""
    database = redis_state = "not configured"
    try:
        await run_in_threadpool(ping, ctx.engine)
        database = "ok"
    except Exception as exc:
        database = f"unreachable: {type(exc).__name__}"
    if ctx.redis_client is not None:
        try:
            await run_in_threadpool(ctx.redis_client.ping)  # type: ignore[attr-defined]
            redis_state = "ok"
        except Exception as exc:
            redis_state = f"unreachable: {type(exc).__name__}"
    ok = database == "ok" and redis_state in ("ok", "not configured")
    body = Readiness(status="ready" if ok else "not ready", database=database, redis=redis_state)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
