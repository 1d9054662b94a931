from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from control_api import registry, train_paths, training
from control_api.context import AppContext
from control_api.db import session_scope
from control_api.deps import Admin, Caller, CtxDep, Operator, SessionDep, Viewer
from control_api.models import RegistryModel
from control_api.routes import errors
from control_api.schemas import ActivationOut, ModelList, ModelOut, TrainRequest
from control_api.security import error_seen_by

router = APIRouter(prefix="/api/models", tags=["models"])


@contextmanager
def backend_errors() -> Iterator[None]:
    """A config the backend cannot take is the caller's 422; the backend failing (the Kubernetes API, or
    publishing the model file when embedded) is a 502, and the surrounding transaction rolls back."""
    try:
        yield
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    except HTTPException:
        raise
    except Exception as exc:
        raise HTTPException(status_code=502, detail=f"registry backend error: {type(exc).__name__}: {exc}") from exc


def _get(session: Session, model_id: str, *, lock: bool = False) -> RegistryModel:
    model = session.get(RegistryModel, model_id, with_for_update=lock)
    if model is None:
        raise HTTPException(status_code=404, detail=f"no model {model_id}")
    return model


@router.get("", response_model=ModelList, responses=errors())
def list_models(
    session: SessionDep,
    caller: Viewer,
    name: Annotated[str | None, Query(max_length=63)] = None,
    state: Annotated[str | None, Query(max_length=24)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ModelList:
    """Registry entries, newest first."""
    table = RegistryModel.__table__
    conditions = []
    if name:
        conditions.append(table.c.name == name)
    if state:
        conditions.append(table.c.state == state)
    total = session.execute(select(func.count()).select_from(table).where(*conditions)).scalar_one()
    # Plain rows, not ORM objects: listing is the hot read path, and building identity-mapped entities
    # cost more than the query itself.
    rows = session.execute(
        select(table).where(*conditions).order_by(table.c.created_at.desc(), table.c.id).limit(limit).offset(offset)
    ).mappings()
    items = [_as_seen_by(caller, ModelOut.model_validate(dict(r))) for r in rows]
    return ModelList(items=items, total=total, limit=limit, offset=offset)


@router.get("/{model_id}", response_model=ModelOut, responses=errors(404))
def get_model(model_id: str, session: SessionDep, caller: Viewer) -> ModelOut:
    return _as_seen_by(caller, ModelOut.model_validate(_get(session, model_id)))


def _as_seen_by(caller: Caller, model: ModelOut) -> ModelOut:
    # A failed job's error is a traceback's tail with server paths in it: viewers get one line of it.
    shown = error_seen_by(caller.role, model.error)
    return model if shown == model.error else model.model_copy(update={"error": shown})


def _train_config(body: TrainRequest, ctx: AppContext) -> dict[str, Any]:
    """The backend's config for this request, or the 422 / 503 that says why it cannot be trained."""
    try:
        config = training.resolve_config(body, ctx.backend.mode)
        if ctx.backend.mode == "embedded":
            # The worker runs the trainer as this server's user: its paths stay inside the training roots.
            train_paths.confine(config, train_paths.parse_roots(ctx.settings.train_roots, ctx.settings.state_dir))
            training.check_train_extra(ctx.settings.train_command)
    except training.ConfigError as exc:
        raise RequestValidationError(exc.as_detail()) from exc
    except training.MissingExtra as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    return config


@router.post("/train", response_model=ModelOut, status_code=202, responses=errors(502, 503))
def train(body: TrainRequest, request: Request, ctx: CtxDep, caller: Operator) -> ModelOut:
    """Register a new version of `name` and start training it (a background worker, or the operator).

    Takes the registry's `{name, config}` or the seed's `{dataset_path, version, hyperparameters}`;
    the config is checked at once (422 naming the key's path), and an embedded server without the
    `train` extra says so (503) instead of queueing a job that cannot run.
    """
    config = _train_config(body, ctx)
    # The version number is MAX(version)+1; the unique constraint turns two concurrent trains of one
    # name into a retry of the whole transaction (not a savepoint: pysqlite's savepoints do not nest
    # reliably, and a half-rolled-back train must never leave its row behind).
    for attempt in range(5):
        try:
            with session_scope(ctx.sessions) as session:
                model = registry.new_model(
                    session, body.name, config, caller.username, registry.TRAIN_QUEUED, label=body.version
                )
                with backend_errors():
                    ctx.backend.submit_train(session, model)
            break
        except IntegrityError:
            if attempt == 4:
                raise
    request.state.audit_target = f"model={model.id}"
    return ModelOut.model_validate(model)


@router.post("/{model_id}/export", response_model=ModelOut, status_code=202, responses=errors(404, 409, 502, 503))
def export(model_id: str, ctx: CtxDep, session: SessionDep, caller: Operator) -> ModelOut:
    """Export a trained model to ONNX (INT8 and evaluation gate as the pipeline's export command does)."""
    if ctx.backend.mode == "embedded":
        try:
            training.check_train_extra(ctx.settings.export_command)
        except training.MissingExtra as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
    model = _get(session, model_id, lock=True)
    try:
        registry.check_export(model)
    except registry.TransitionError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    with backend_errors():
        ctx.backend.submit_export(session, model, caller.username)
    return ModelOut.model_validate(model)


@router.put("/{model_id}/activate", response_model=ActivationOut, responses=errors(404, 409, 502))
async def activate(model_id: str, ctx: CtxDep, caller: Admin) -> ActivationOut:
    """Make this exported model the one served; the previous active model goes back to `exported`."""

    def change() -> tuple[RegistryModel, RegistryModel | None, str]:
        with session_scope(ctx.sessions) as session:
            model = _get(session, model_id, lock=True)
            try:
                previous = registry.activate(session, model, caller.username)
            except registry.TransitionError as exc:
                raise HTTPException(status_code=409, detail=str(exc)) from exc
            # Inside the transaction: if the cluster refuses the patch, the registry does not change.
            with backend_errors():
                reload = ctx.backend.activated(model, previous)
            return model, previous, reload

    model, previous, reload = await run_in_threadpool(change)
    return ActivationOut(
        model=ModelOut.model_validate(model), previous_id=previous.id if previous else None, reload=reload
    )
