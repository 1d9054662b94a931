"""Names that are part of the operator's contract with the cluster."""

from __future__ import annotations

from voiceflow.contracts import API_VERSION, GROUP, KIND, PLURAL, VERSION, qualified
from voiceflow.registry import DEFAULT_PIPELINE, PIPELINES

__all__ = ["API_VERSION", "GROUP", "KIND", "PLURAL", "VERSION"]

# Our own domain for everything the operator writes, so nothing collides with Kopf's defaults
# or another operator's.
FINALIZER = qualified("finalizer")
PROGRESS_ANNOTATION_PREFIX = GROUP
LABEL_MODEL = qualified("model")
LABEL_VERSION = qualified("version")
LABEL_ROLE = qualified("role")  # training | export | stable | canary
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "voiceflow-operator"
# The ServiceAccount training Workflows and export Jobs run as, in the resource's namespace (the Helm
# chart creates it, with the Argo executor's Role, in the release and every watched namespace).
WORKFLOW_SERVICE_ACCOUNT = "voiceflow-workflow"

# The inference pod's contract (inference_pod issue): one port, probes, metrics, WebSocket.
SERVING_PORT = 3000
HEALTH_PATH = "/health"
READY_PATH = "/ready"
METRICS_PATH = "/metrics"
STREAM_PATH = "/ws/stream"
LATENCY_METRIC = "inference_latency_seconds"
# The diarization pipelines the inference pod runs, chosen by spec.serving.pipeline and passed as
# env PIPELINE_ENV (inference_pod/settings.py validates it at start): the engine's registry (no
# numpy, so the operator stays a manifest builder); a test ties the CRD's enum to it.
SERVING_PIPELINES = PIPELINES
DEFAULT_SERVING_PIPELINE = DEFAULT_PIPELINE
PIPELINE_ENV = "VOICEFLOW_PIPELINE"

# Condition types in status.conditions.
TRAINED = "Trained"
EXPORTED = "Exported"
READY = "Ready"
CANARY_HEALTHY = "CanaryHealthy"
