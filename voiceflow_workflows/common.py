"""Pieces shared by the training and batch workflows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hera.workflows import Container, Parameter, Workflow
from hera.workflows.models import (
    IntOrString,
    PersistentVolumeClaim,
    PersistentVolumeClaimSpec,
    Quantity,
    RetryStrategy,
    TTLStrategy,
    VolumeMount,
    VolumeResourceRequirements,
)
from hera.workflows.models import ObjectMeta as ModelObjectMeta
from hera.workflows.models import ResourceRequirements as ModelResources

from voiceflow.contracts import qualified
from voiceflow_workflows.steps import WORKSPACE, StepCommand, param

WORKSPACE_VOLUME = "workspace"


class WorkflowRun(Protocol):
    """What every workflow's parameters say about the run itself, whatever its steps."""

    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def service_account(self) -> str | None: ...
    @property
    def workspace_size(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The run options every workflow's parameters take, whatever its steps (keyword-only)."""

    namespace: str | None = None
    service_account: str | None = "voiceflow-workflow"
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


def voiceflow_workflow(
    kind: str, run: WorkflowRun, entrypoint: str, arguments: Sequence[Parameter], **extra: Any
) -> Workflow:
    """A Workflow with what every VoiceFlow workflow has: labels, service account, a workspace, TTLs."""
    return Workflow(
        name=run.name,
        namespace=run.namespace,
        labels=workflow_labels(kind, run.labels),
        entrypoint=entrypoint,
        service_account_name=run.service_account,
        volume_claim_templates=[workspace_claim(run.workspace_size)],
        # Keep a failed run around for a day for debugging; successful ones go after an hour.
        ttl_strategy=TTLStrategy(seconds_after_success=3600, seconds_after_failure=86400),
        arguments=list(arguments),
        **extra,
    )


def workspace_claim(size: str) -> PersistentVolumeClaim:
    # One scratch volume per workflow run, shared by its steps and deleted with the workflow.
    return PersistentVolumeClaim(
        metadata=ModelObjectMeta(name=WORKSPACE_VOLUME),
        spec=PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"],
            resources=VolumeResourceRequirements(requests={"storage": Quantity(size)}),
        ),
    )


def step_container(
    step: StepCommand,
    resources: Mapping[str, Mapping[str, str]] | None = None,
    outputs: list[Parameter] | None = None,
    mounts: Sequence[VolumeMount] = (),
    inputs: Sequence[Any] = (),
) -> Container:
    """A template running `voiceflow <step.args>` in the workflow's image with the workspace mounted."""
    return Container(
        name=step.name,
        image=param("image"),
        command=["voiceflow"],
        args=list(step.args),
        volume_mounts=[VolumeMount(name=WORKSPACE_VOLUME, mount_path=WORKSPACE), *mounts],
        resources=_resources(resources),
        outputs=outputs,
        inputs=list(inputs) or None,
        # Only infrastructure hiccups are retried; a step that exits non-zero is a real failure.
        retry_strategy=RetryStrategy(limit=IntOrString(2), retry_policy="OnError"),
    )


def _resources(resources: Mapping[str, Mapping[str, str]] | None) -> ModelResources | None:
    if not resources:
        return None
    return ModelResources(
        requests=_quantities(resources.get("requests")),
        limits=_quantities(resources.get("limits")),
    )


def _quantities(values: Mapping[str, str] | None) -> dict[str, Quantity] | None:
    return {k: Quantity(str(v)) for k, v in values.items()} if values else None


def workflow_labels(kind: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    labels = {"app.kubernetes.io/part-of": "voiceflow", qualified("workflow"): kind}
    labels.update(extra or {})
    return labels


def strip_empty(value: Any) -> Any:
    """Drop None values hera leaves in nested dicts, so the manifest is minimal and stable."""
    if isinstance(value, dict):
        return {k: strip_empty(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_empty(v) for v in value]
    return value
