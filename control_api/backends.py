"""Where registry actions go: the embedded worker queue, or the cluster's DiarizationModel resources."""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_api import k8s, registry
from control_api.models import RegistryModel

log = logging.getLogger(__name__)


class RegistryBackend(Protocol):
    mode: str

    def submit_train(self, session: Session, model: RegistryModel) -> None: ...
    def submit_export(self, session: Session, model: RegistryModel, username: str) -> None: ...
    def activated(self, model: RegistryModel, previous: RegistryModel | None) -> str: ...
    def sync(self, session: Session) -> int: ...


class EmbeddedBackend:
    """Train/export are queued in the database and run by a registry worker (`control_api.runner`)."""

    mode = "embedded"

    def __init__(self, reload_url: str = "") -> None:
        self.reload_url = reload_url

    def submit_train(self, session: Session, model: RegistryModel) -> None:
        pass  # created as train_queued: the worker finds it

    def submit_export(self, session: Session, model: RegistryModel, username: str) -> None:
        registry.touch(model, username, state=registry.EXPORT_QUEUED)

    def activated(self, model: RegistryModel, previous: RegistryModel | None) -> str:
        """Hot-reload the local inference pod; its outcome is reported, never fatal to the activation."""
        if not self.reload_url:
            return "skipped: no inference reload URL configured"
        body = json.dumps(
            {
                "model_path": (model.artifact_uri or "").removeprefix("file://"),
                "sha256": model.sha256,
                "version": f"{model.name}-v{model.version}",
            }
        ).encode()
        request = urllib.request.Request(
            self.reload_url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return f"reloaded: HTTP {response.status}"
        except Exception as exc:  # the pod may be down; the registry state is still the truth
            log.warning("inference reload at %s failed: %s", self.reload_url, exc)
            return f"failed: {exc}"

    def sync(self, session: Session) -> int:
        return 0


class KubernetesBackend:
    """The operator does the work; the registry creates/patches resources and mirrors their status."""

    mode = "kubernetes"

    def __init__(self, objects: k8s.CustomObjects, namespace: str) -> None:
        self.objects, self.namespace = objects, namespace

    def submit_train(self, session: Session, model: RegistryModel) -> None:
        manifest = k8s.build_manifest(
            model_id=model.id,
            name=model.name,
            version=model.version,
            config=model.config or {},
            namespace=self.namespace,
            username=model.created_by,
        )
        self.objects.create(self.namespace, manifest)
        model.resource_name = manifest["metadata"]["name"]

    def submit_export(self, session: Session, model: RegistryModel, username: str) -> None:
        self.objects.patch(self.namespace, self._name(model), k8s.export_patch())
        registry.touch(model, username, state=registry.EXPORT_QUEUED)

    def activated(self, model: RegistryModel, previous: RegistryModel | None) -> str:
        if previous is not None and previous.resource_name:
            self.objects.patch(self.namespace, previous.resource_name, k8s.active_patch(False))
        self.objects.patch(self.namespace, self._name(model), k8s.active_patch(True))
        return "patched: the operator rolls the inference pods"

    def sync(self, session: Session) -> int:
        changed = 0
        rows = session.execute(
            select(RegistryModel).where(RegistryModel.resource_name.is_not(None))
        ).scalars()
        for model in rows:
            try:
                resource: dict[str, Any] = self.objects.get(self.namespace, self._name(model))
            except Exception as exc:  # a deleted resource leaves the last known state in the registry
                log.debug("cannot read %s: %s", model.resource_name, exc)
                continue
            changed += registry.apply_cluster_status(model, resource.get("status") or {})
        return changed

    @staticmethod
    def _name(model: RegistryModel) -> str:
        return model.resource_name or k8s.resource_name(model.name, model.version)


def make_backend(mode: str, *, namespace: str, reload_url: str) -> RegistryBackend:
    resolved = ("kubernetes" if k8s.in_cluster() else "embedded") if mode == "auto" else mode
    if resolved == "kubernetes":
        return KubernetesBackend(k8s.KubernetesCustomObjects(), namespace)
    if resolved == "embedded":
        return EmbeddedBackend(reload_url)
    raise ValueError(f"unknown registry mode {mode!r} (auto, embedded or kubernetes)")
