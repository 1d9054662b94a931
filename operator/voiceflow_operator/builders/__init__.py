"""Pure manifest builders: spec in, plain dicts out, no API calls, no Kopf."""

from voiceflow_operator.builders.autoscaling import build_scaled_object
from voiceflow_operator.builders.common import Owner
from voiceflow_operator.builders.export_job import build_export_job
from voiceflow_operator.builders.kserve import build_inference_service
from voiceflow_operator.builders.streaming import build_deployment, build_http_route, build_service
from voiceflow_operator.builders.training import build_training_workflow_for

__all__ = [
    "Owner",
    "build_deployment",
    "build_export_job",
    "build_http_route",
    "build_inference_service",
    "build_scaled_object",
    "build_service",
    "build_training_workflow_for",
]
