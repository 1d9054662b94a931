"""In-cluster registry backend: `DiarizationModel` custom resources, created and patched, never run here.

`build_manifest` and the patch builders are pure (unit-tested); `CustomObjects` is the small interface
the registry needs from the Kubernetes client, so tests and the embedded mode never import it.
"""

from __future__ import annotations

import os
import re
from typing import Any, Protocol, cast

GROUP, VERSION, PLURAL, KIND = "voiceflow.io", "v1alpha1", "diarizationmodels", "DiarizationModel"
_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")


class CustomObjects(Protocol):
    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def get(self, namespace: str, name: str) -> dict[str, Any]: ...


def resource_name(model_name: str, version: int) -> str:
    """A DNS-1123 name, unique per registry version (`<name>-v<version>`, at most 63 characters)."""
    base = _DNS_UNSAFE.sub("-", model_name.lower()).strip("-") or "model"
    suffix = f"-v{version}"
    return base[: 63 - len(suffix)].rstrip("-") + suffix


def build_manifest(
    *, model_id: str, name: str, version: int, config: dict[str, Any], namespace: str, username: str
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": resource_name(name, version),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "voiceflow-control-api",
                "voiceflow.io/model-name": resource_name(name, version)[: -len(f"-v{version}")],
            },
            "annotations": {"voiceflow.io/registry-id": model_id, "voiceflow.io/requested-by": username},
        },
        "spec": {
            "modelName": name,
            "version": version,
            "training": {"config": config},
            "export": {"enabled": False},
            "active": False,
        },
    }


def export_patch() -> dict[str, Any]:
    return {"spec": {"export": {"enabled": True}}}


def active_patch(active: bool) -> dict[str, Any]:
    return {"spec": {"active": active}}


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

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self._api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        return cast(dict[str, Any], result)

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        result = self._api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)
        return cast(dict[str, Any], result)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        result = self._api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return cast(dict[str, Any], result)
