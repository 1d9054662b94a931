"""Request and response bodies of the HTTP API (what the OpenAPI schema and schemathesis see)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["viewer", "operator", "admin"]
MODEL_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$"  # usable inside a Kubernetes resource name


class ErrorResponse(BaseModel):
    detail: str | list[Any]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    database: str
    redis: str


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    role: Role


DEFAULT_MODEL_NAME = "voiceflow"


class Hyperparameters(BaseModel):
    """The seed's hyperparameters; mapped onto the trainer's `lr`, `batch_size`, `epochs`."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float | None = Field(default=None, gt=0, le=1)
    batch_size: int | None = Field(default=None, ge=1, le=4096)
    epochs: int | None = Field(default=None, ge=1, le=10_000)


class TrainRequest(BaseModel):
    """Either the registry's `{name, config}` or the seed's `{dataset_path, version, hyperparameters}`
    (or both: the seed's fields are merged into `config`; control_api.training maps them)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default=DEFAULT_MODEL_NAME,
        pattern=MODEL_NAME_PATTERN,
        description="lower-case DNS label, e.g. 'ge2e-call-center'",
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="embedded: the trainer's config (pipelines/training/config.py); "
        "in-cluster: the DiarizationModel's spec.training fields",
    )
    dataset_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="folder holding the training data (the trainer's data.data_root); in-cluster a URI",
    )
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the caller's own label for this version, e.g. '1.3.0' (kept as `label`)",
    )
    hyperparameters: Hyperparameters | None = None


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    version: int
    label: str | None = None
    state: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    checkpoint_uri: str | None
    artifact_uri: str | None
    sha256: str | None
    error: str | None
    resource_name: str | None
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime


class ModelList(BaseModel):
    items: list[ModelOut]
    total: int
    limit: int
    offset: int


class ActivationOut(BaseModel):
    model: ModelOut
    previous_id: str | None
    reload: str


class Segment(BaseModel):
    start: float
    end: float
    speaker: str


class ModelIdentity(BaseModel):
    version: str
    bundle_digest: str


class BatchFileOut(BaseModel):
    position: int
    filename: str
    status: Literal["queued", "running", "done", "failed"]
    attempts: int
    error: str | None
    segments: list[Segment] | None
    rttm: str | None
    model: ModelIdentity | None = None
    started_at: datetime | None
    finished_at: datetime | None


class BatchJobFields(BaseModel):
    """What a job's full view and its list entry both say about it."""

    id: str
    state: Literal["queued", "running", "completed", "completed_with_errors", "failed"]
    progress: float = Field(ge=0, le=1)
    created_by: str
    created_at: datetime


class BatchJobOut(BatchJobFields):
    files: list[BatchFileOut]


class BatchJobSummary(BatchJobFields):
    files: int
    failed: int


class BatchJobCreated(BaseModel):
    job_id: str
    state: str
    files: int


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    username: str | None
    action: str
    target: str | None
    status_code: int
    outcome: str
    client: str | None
