"""Argo Workflows for VoiceFlow, built with hera and rendered offline to plain manifests.

`build_training_workflow` (prepare -> train -> export -> evaluate -> register) and
`build_batch_workflow` return plain dicts (`Workflow.to_dict()`), so the operator can create them
through any Kubernetes client and tests can validate them without an Argo server.
"""

from voiceflow_workflows.batch import BatchWorkflowParams, build_batch_workflow
from voiceflow_workflows.steps import STEP_COMMANDS, StepCommand
from voiceflow_workflows.training import TrainingWorkflowParams, build_training_workflow

__all__ = [
    "STEP_COMMANDS",
    "BatchWorkflowParams",
    "StepCommand",
    "TrainingWorkflowParams",
    "build_batch_workflow",
    "build_training_workflow",
]
