"""In-cluster registry backend: `DiarizationModel` resources (crds/diarizationmodels.voiceflow.io.yaml).

One resource per registry model *name*; each registry version is a value of its `spec.version`, which
the operator trains, exports and rolls out through a canary. Train sets a new version with
`spec.training`; activate points the resource at an already exported version with `spec.model`.
The registry mirrors `status` (phase, servedVersion, modelUri, metrics) back into its rows.

Manifest and patch builders are pure (unit-tested); `CustomObjects` is the small interface the registry
needs from the Kubernetes client, so tests and the embedded mode never import it.
"""

from __future__ import annotations

import os
import re
from typing import Any, Protocol, cast

from voiceflow.contracts import GROUP, HYPERPARAMETERS, KIND, PLURAL, VERSION, qualified

_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")
_URI = re.compile(r"^(s3|gs|pvc|https?|file)://.+")
# spec.training fields of the CRD a registry config may set, and the hyperparameters it knows; the API
# server silently prunes unknown fields, so anything else is refused here with a clear message instead.
TRAINING_FIELDS = (
    "dataset",
    "preset",
    "config",
    "image",
    "artifacts",
    "derMargin",
    "maxRetries",
    "resources",
)
EXPORT_FIELDS = ("quantize",)


class CustomObjects(Protocol):
    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...


def resource_name(model_name: str) -> str:
    """A DNS-1123 label for the model name (the registry already restricts names to this form)."""
    return (_DNS_UNSAFE.sub("-", model_name.lower()).strip("-") or "model")[:63].rstrip("-")


def version_label(version: int) -> str:
    return str(version)


def training_spec(config: dict[str, Any]) -> dict[str, Any]:
    """spec.training from a registry train config; raises ValueError when the CRD would refuse it."""
    dataset = config.get("dataset")
    if not isinstance(dataset, str) or not _URI.match(dataset):
        raise ValueError("in-cluster training needs config.dataset, an s3://, gs://, pvc://, http(s):// or file:// URI")
    known = {*TRAINING_FIELDS, *HYPERPARAMETERS, *EXPORT_FIELDS, "hyperparameters"}
    unknown = sorted(set(config) - known)
    nested = config.get("hyperparameters") or {}
    if not isinstance(nested, dict):
        raise ValueError("config.hyperparameters must be an object")
    unknown += sorted(f"hyperparameters.{k}" for k in set(nested) - set(HYPERPARAMETERS))
    if unknown:
        raise ValueError(
            f"unknown in-cluster training option(s): {', '.join(unknown)} "
            f"(known: {', '.join(TRAINING_FIELDS + HYPERPARAMETERS + EXPORT_FIELDS)})"
        )
    spec: dict[str, Any] = {key: config[key] for key in TRAINING_FIELDS if key in config}
    hyper = {**{k: config[k] for k in HYPERPARAMETERS if k in config}, **nested}
    if hyper:
        spec["hyperparameters"] = hyper
    return spec


def export_spec(config: dict[str, Any]) -> dict[str, Any]:
    return {"quantize": "int8" if config.get("quantize") == "int8" else "none"}


def build_manifest(
    *, model_id: str, name: str, version: int, config: dict[str, Any], namespace: str, username: str
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": resource_name(name),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "voiceflow-control-api",
                "app.kubernetes.io/part-of": "voiceflow",
            },
            "annotations": registry_annotations(model_id, username),
        },
        "spec": {
            "version": version_label(version),
            "training": training_spec(config),
            "export": export_spec(config),
        },
    }


def registry_annotations(model_id: str, username: str) -> dict[str, str]:
    return {qualified("registry-id"): model_id, qualified("requested-by"): username}


def train_patch(*, model_id: str, version: int, config: dict[str, Any], username: str) -> dict[str, Any]:
    """Merge patch retargeting an existing resource at a new version to train (`model: None` removes it)."""
    return {
        "metadata": {"annotations": registry_annotations(model_id, username)},
        "spec": {
            "version": version_label(version),
            "training": training_spec(config),
            "model": None,
            "export": export_spec(config),
        },
    }


def export_patch(config: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"export": export_spec(config)}}


def activate_patch(
    *, model_id: str, version: int, artifact_uri: str, sha256: str | None, username: str
) -> dict[str, Any]:
    """Serve an already exported version: the operator rolls it out through its canary."""
    model: dict[str, Any] = {"uri": artifact_uri}
    if sha256:
        model["sha256"] = sha256
    return {
        "metadata": {"annotations": registry_annotations(model_id, username)},
        "spec": {"version": version_label(version), "model": model, "training": None},
    }


# status.phase of the resource, while it targets this version -> registry state.
PHASE_TO_STATE = {
    "Pending": "train_queued",
    "Training": "training",
    "Exporting": "exporting",
    "Deploying": "exported",
    "Canary": "exported",
    "RolledBack": "exported",
    "Ready": "active",
    "Failed": "failed",
}


def registry_changes(resource: dict[str, Any], version: int, current_state: str) -> dict[str, Any]:
    """What the registry row of `version` should change to, given the resource as the cluster has it."""
    spec, status = resource.get("spec") or {}, resource.get("status") or {}
    label = version_label(version)
    changes: dict[str, Any] = {}
    if status.get("servedVersion") == label:
        state = "active"
        if status.get("servedModelUri"):
            changes["artifact_uri"] = status["servedModelUri"]
    elif spec.get("version") == label:
        phase = str(status.get("phase", "Pending"))
        stale = _observed_before_last_change(resource) or phase == "Ready"
        # "Ready" here is about the previously served version: the operator has not picked this one up.
        state = current_state if stale else PHASE_TO_STATE.get(phase, current_state)
        if status.get("modelUri"):
            changes["artifact_uri"] = status["modelUri"]
        conditions = status.get("conditions") or []
        if state == "failed":
            messages = [c.get("message") for c in conditions if c.get("status") == "False" and c.get("message")]
            changes["error"] = "; ".join(messages)[:2000] or "failed in the cluster"
    else:
        # The resource has moved on to another version: this one is no longer served.
        state = "exported" if current_state == "active" else current_state
    if state != current_state:
        changes["state"] = state
    metrics = status.get("metrics")
    if isinstance(metrics, dict) and spec.get("version") == label:
        changes["metrics"] = {k: _number(v) for k, v in metrics.items()}
    return changes


def _observed_before_last_change(resource: dict[str, Any]) -> bool:
    generation = (resource.get("metadata") or {}).get("generation")
    observed = (resource.get("status") or {}).get("observedGeneration")
    return isinstance(generation, int) and isinstance(observed, int) and observed < generation


def _number(value: Any) -> Any:
    # The CRD keeps metrics as strings (exact decimal); the registry reports numbers where it can.
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def in_cluster() -> bool:
    # Set by the kubelet in every pod; the service-account token is what the client will authenticate with.
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


class KubernetesCustomObjects:
    """`CustomObjects` over the official client (imported here only, when in-cluster mode is used)."""

    def __init__(self) -> None:
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        self._api = client.CustomObjectsApi()
        self._api_exception = client.ApiException

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self._api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        return cast(dict[str, Any], result)

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        # A JSON merge patch, so `None` removes a field (training <-> model are mutually exclusive).
        result = self._api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, body, _content_type="application/merge-patch+json"
        )
        return cast(dict[str, Any], result)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            result = self._api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except self._api_exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise
        return cast(dict[str, Any], result)
