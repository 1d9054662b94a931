"""The training Workflow for a DiarizationModel: the hera builder (voiceflow_workflows), plus ownership."""

from __future__ import annotations

from typing import Any

from voiceflow_operator.builders.common import Owner, labels, metadata
from voiceflow_operator.constants import WORKFLOW_SERVICE_ACCOUNT
from voiceflow_operator.naming import workflow_name
from voiceflow_operator.spec import ModelSpec
from voiceflow_workflows import TrainingWorkflowParams, build_training_workflow


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def build_training_workflow_for(owner: Owner, spec: ModelSpec, attempt: int) -> dict[str, Any]:
    """Render the training Workflow for spec.version; `attempt` names retries apart."""
    assert spec.training is not None, "only called for resources that train"
    t = spec.training
    name = workflow_name(owner.name, spec.version, attempt)
    params = TrainingWorkflowParams(
        name=name,
        namespace=owner.namespace,
        version=spec.version,
        dataset=t.dataset,
        image=t.image,
        config=t.config or t.preset,
        artifacts=t.artifacts,
        quantize=spec.quantize,
        der_margin=t.der_margin,
        resources=t.resources,
        seed=int(t.hyperparameters.get("seed", 0)),
        epochs=_int(t.hyperparameters.get("epochs")),
        batch_size=_int(t.hyperparameters.get("batchSize")),
        lr=t.hyperparameters.get("learningRate"),
        max_steps=_int(t.hyperparameters.get("maxSteps")),
        labels=labels(owner, "training", spec.version),
        service_account=WORKFLOW_SERVICE_ACCOUNT,
    )
    wf = build_training_workflow(params)
    wf["metadata"] = {**wf["metadata"], **metadata(owner, name, "training", spec.version)}
    return wf
