"""Streaming mode: the inference pod as Deployment + Service, and a Gateway API HTTPRoute
splitting traffic between the stable and the canary Service by weight."""

from __future__ import annotations

from typing import Any

from voiceflow_operator.builders.common import RESTRICTED, Owner, container_resources, metadata, selector_labels
from voiceflow_operator.builders.storage import model_files
from voiceflow_operator.constants import (
    HEALTH_PATH,
    PIPELINE_ENV,
    READY_PATH,
    SERVING_PORT,
)
from voiceflow_operator.spec import ModelSpec

# Long enough for WebSocket sessions to finish or be told to reconnect (see docs/operator.md).
DRAIN_SECONDS = 60
PRESTOP_SLEEP_SECONDS = 10


def build_deployment(
    owner: Owner, spec: ModelSpec, name: str, role: str, version: str, model_uri: str
) -> dict[str, Any]:
    """The inference-pod Deployment; `replicas` is left unset so the autoscaler owns it."""
    meta = metadata(owner, name, role, version)
    files = model_files(model_uri)
    probe = {"httpGet": {"path": READY_PATH, "port": "http"}, "periodSeconds": 5, "failureThreshold": 3}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector_labels(owner, role)},
            "progressDeadlineSeconds": spec.serving.canary.progress_deadline_seconds,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": meta["labels"],
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(SERVING_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": DRAIN_SECONDS,
                    **_nonempty(volumes=files.volumes, initContainers=files.init_containers),
                    "containers": [
                        {
                            "name": "inference",
                            "image": spec.serving.image,
                            "command": ["voiceflow"],
                            "args": serve_args(files.path),
                            "env": pipeline_env(spec),
                            "securityContext": dict(RESTRICTED),
                            **_nonempty(volumeMounts=files.mounts),
                            "ports": [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}],
                            "readinessProbe": probe,
                            "livenessProbe": {
                                "httpGet": {"path": HEALTH_PATH, "port": "http"},
                                "periodSeconds": 10,
                                "failureThreshold": 3,
                            },
                            # Endpoints are removed asynchronously; keep serving briefly so no new
                            # WebSocket lands on a pod that is about to close its sessions.
                            "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
                            "resources": container_resources(spec.serving.resources)
                            or {"requests": {"cpu": "500m", "memory": "512Mi"}},
                        }
                    ],
                },
            },
        },
    }


def _nonempty(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v}


def serve_args(model_path: str) -> list[str]:
    """The `voiceflow serve` argv; the pod watches the model file and hot-reloads it."""
    return ["serve", "--port", str(SERVING_PORT), "--model", model_path]


def pipeline_env(spec: ModelSpec) -> list[dict[str, str]]:
    """The serving container's pipeline choice (spec.serving.pipeline); a change rolls the pods."""
    return [{"name": PIPELINE_ENV, "value": spec.serving.pipeline}]


def build_service(owner: Owner, name: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, name, role),
        "spec": {
            "selector": selector_labels(owner, role),
            "ports": [{"name": "http", "port": SERVING_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_http_route(
    owner: Owner, spec: ModelSpec, name: str, stable_service: str, canary_service: str, canary_weight: int
) -> dict[str, Any]:
    """An HTTPRoute sending `canary_weight`% of new connections to the canary Service.

    Weights act per request; a WebSocket is one request, so they split new sessions, and an
    established session stays on its pod until that pod drains.
    """
    gw = spec.serving.gateway
    parent: dict[str, Any] = {"name": gw.name}
    if gw.namespace:
        parent["namespace"] = gw.namespace
    backends: list[dict[str, Any]] = [
        {"name": stable_service, "port": SERVING_PORT, "weight": 100 - canary_weight}
    ]
    if canary_weight > 0:
        backends.append({"name": canary_service, "port": SERVING_PORT, "weight": canary_weight})
    route: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(owner, name, "route"),
        "spec": {
            "parentRefs": [parent],
            "rules": [
                {
                    # One rule for everything the pod serves (/ws/stream, /infer, ...): the
                    # weights split each new request, and a WebSocket session is one request.
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": backends,
                }
            ],
        },
    }
    if gw.hostname:
        route["spec"]["hostnames"] = [gw.hostname]
    return route
