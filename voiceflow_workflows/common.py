"""Pieces shared by the training and batch workflows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hera.workflows import Container, Parameter
from hera.workflows.models import (
    IntOrString,
    PersistentVolumeClaim,
    PersistentVolumeClaimSpec,
    Quantity,
    RetryStrategy,
    VolumeMount,
    VolumeResourceRequirements,
)
from hera.workflows.models import ObjectMeta as ModelObjectMeta
from hera.workflows.models import ResourceRequirements as ModelResources

from voiceflow.contracts import qualified
from voiceflow_workflows.steps import WORKSPACE, StepCommand, param

WORKSPACE_VOLUME = "workspace"


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
