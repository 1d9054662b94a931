"""KServe mode: an InferenceService for the synchronous /infer path, canary by
`canaryTrafficPercent` (KServe keeps the previous revision for the rest of the traffic)."""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import urlparse

from voiceflow_operator.builders.common import RESTRICTED, Owner, container_resources, metadata
from voiceflow_operator.builders.streaming import pipeline_env, serve_args
from voiceflow_operator.constants import READY_PATH, SERVING_PORT
from voiceflow_operator.spec import ModelSpec


def _downloaded(model_uri: str) -> str:
    """Where KServe's storage initializer puts STORAGE_URI: a bundle folder's contents in /mnt/models."""
    name = posixpath.basename(urlparse(model_uri).path.rstrip("/"))
    return posixpath.join("/mnt/models", name) if name.endswith(".onnx") else "/mnt/models"


def build_inference_service(
    owner: Owner,
    spec: ModelSpec,
    name: str,
    version: str,
    model_uri: str,
    canary_percent: int | None,
) -> dict[str, Any]:
    """`canary_percent=None` means fully rolled out (no split); an int routes that share to
    the latest revision and the rest to the last one that was rolled out."""
    a = spec.serving.autoscaling
    predictor: dict[str, Any] = {
        "minReplicas": a.min_replicas,
        "maxReplicas": a.max_replicas,
        "containers": [
            {
                # KServe requires this container name for custom predictors.
                "name": "kserve-container",
                "image": spec.serving.image,
                "command": ["voiceflow"],
                # KServe's storage initializer downloads STORAGE_URI into /mnt/models.
                "args": serve_args(_downloaded(model_uri)),
                "env": [{"name": "STORAGE_URI", "value": model_uri}, *pipeline_env(spec)],
                "securityContext": dict(RESTRICTED),
                "ports": [{"containerPort": SERVING_PORT, "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": READY_PATH, "port": SERVING_PORT}},
                "resources": container_resources(spec.serving.resources)
                or {"requests": {"cpu": "500m", "memory": "512Mi"}},
            }
        ],
    }
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata(owner, name, "kserve", version),
        "spec": {"predictor": predictor},
    }
