"""The model registry's rules: which state a model may move to, and the records those moves write.

States: train_queued -> training -> trained -> export_queued -> exporting -> exported -> active,
with `failed` reachable from any working state. In-cluster the operator moves a model through the same
states (it trains, exports and rolls out in one go) and `k8s.registry_changes` copies them in.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_api.models import RegistryModel, utcnow

TRAIN_QUEUED, TRAINING, TRAINED = "train_queued", "training", "trained"
EXPORT_QUEUED, EXPORTING, EXPORTED = "export_queued", "exporting", "exported"
ACTIVE, FAILED = "active", "failed"
STATES = (TRAIN_QUEUED, TRAINING, TRAINED, EXPORT_QUEUED, EXPORTING, EXPORTED, ACTIVE, FAILED)

# Export needs a checkpoint: a trained model, or an exported one being re-exported.
EXPORTABLE = frozenset({TRAINED, EXPORTED})
ACTIVATABLE = frozenset({EXPORTED, ACTIVE})


class TransitionError(Exception):
    """The requested action does not apply to the model's current state (a 409)."""


def check_export(model: RegistryModel) -> None:
    if model.state not in EXPORTABLE or not model.checkpoint_uri:
        raise TransitionError(f"model {model.id} is {model.state}; only a trained model can be exported")


def check_activate(model: RegistryModel) -> None:
    if model.state not in ACTIVATABLE or not model.artifact_uri:
        raise TransitionError(f"model {model.id} is {model.state}; only an exported model can be activated")


def next_version(session: Session, name: str) -> int:
    current = session.execute(select(func.max(RegistryModel.version)).where(RegistryModel.name == name)).scalar()
    return int(current or 0) + 1


def new_model(
    session: Session, name: str, config: dict[str, Any], username: str, state: str, label: str | None = None
) -> RegistryModel:
    now = utcnow()
    model = RegistryModel(
        id=str(uuid.uuid4()),
        name=name,
        version=next_version(session, name),
        label=label,
        state=state,
        config=config,
        metrics={},
        created_by=username,
        updated_by=username,
        created_at=now,
        updated_at=now,
    )
    session.add(model)
    session.flush()
    return model


def touch(model: RegistryModel, username: str, **changes: Any) -> None:
    for key, value in changes.items():
        setattr(model, key, value)
    model.updated_by = username
    model.updated_at = utcnow()


def current_active(session: Session) -> RegistryModel | None:
    return session.execute(select(RegistryModel).where(RegistryModel.state == ACTIVE)).scalars().first()


def activate(session: Session, model: RegistryModel, username: str) -> RegistryModel | None:
    """Make `model` the one active model; the previously active one goes back to `exported`."""
    check_activate(model)
    previous = current_active(session)
    if previous is not None and previous.id != model.id:
        touch(previous, username, state=EXPORTED)
    touch(model, username, state=ACTIVE)
    return previous if previous is not None and previous.id != model.id else None
