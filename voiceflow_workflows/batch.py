"""The batch workflow: diarize a folder or manifest of recordings with one `voiceflow batch` step.

`voiceflow batch` is itself resumable (it skips finished outputs), so a retried or resubmitted
workflow continues where the last one stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hera.workflows import DAG, Parameter, Task

from voiceflow_workflows.common import RunOptions, step_container, strip_empty, voiceflow_workflow
from voiceflow_workflows.steps import batch_step


@dataclass(frozen=True)
class BatchWorkflowParams(RunOptions):
    name: str
    input: str  # a directory or a manifest file, as seen from the step pod
    output: str
    image: str
    model: str | None = None  # an ONNX path in the pod; None: the bundled default
    workers: int = 4
    workspace_size: str = "10Gi"


def build_batch_workflow(p: BatchWorkflowParams) -> dict[str, Any]:
    """Render the batch diarization Workflow manifest."""
    arguments = [
        Parameter(name="input", value=p.input),
        Parameter(name="output", value=p.output),
        Parameter(name="image", value=p.image),
        Parameter(name="model", value=p.model or ""),
        Parameter(name="workers", value=str(p.workers)),
    ]
    with voiceflow_workflow("batch", p, "main", arguments) as wf:
        step = step_container(batch_step(p.model is not None), resources=p.resources)
        with DAG(name="main"):
            Task(name="diarize", template=step)
    return strip_empty(wf.to_dict())
