"""Where registry actions go: the embedded worker queue, or the cluster's DiarizationModel resources."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_api import k8s, registry
from control_api.models import RegistryModel
from voiceflow.bundle import publish_bundle

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

    def __init__(self, active_model_dir: Path) -> None:
        self.active_model_dir = active_model_dir

    def submit_train(self, session: Session, model: RegistryModel) -> None:
        pass  # created as train_queued: the worker finds it

    def submit_export(self, session: Session, model: RegistryModel, username: str) -> None:
        registry.touch(model, username, state=registry.EXPORT_QUEUED)

    def activated(self, model: RegistryModel, previous: RegistryModel | None) -> str:
        """Publish the model where the local inference pod watches for it (it hot-reloads on change)."""
        uri = model.artifact_uri or ""
        if not uri.startswith("file://"):
            return f"skipped: {uri} is not a local file"
        target = publish_model(Path(uri.removeprefix("file://")), self.active_model_dir)
        return f"published to {target}"

    def sync(self, session: Session) -> int:
        return 0


def publish_model(artifact: Path, directory: Path) -> Path:
    """Make the bundle of `artifact` (the ONNX and every sidecar, voiceflow.bundle) the one the
    directory serves: copied whole, verified, then switched in with one rename of `current`, so the
    watching pod never sees half a bundle. A bundle with a missing or corrupt part is refused."""
    return publish_bundle(artifact, directory).model_path


class KubernetesBackend:
    """The operator does the work; the registry creates/patches resources and mirrors their status."""

    mode = "kubernetes"

    def __init__(self, objects: k8s.CustomObjects, namespace: str) -> None:
        self.objects, self.namespace = objects, namespace

    def submit_train(self, session: Session, model: RegistryModel) -> None:
        name = k8s.resource_name(model.name)
        config = model.config or {}
        if self.objects.get(self.namespace, name) is None:
            manifest = k8s.build_manifest(
                model_id=model.id,
                name=model.name,
                version=model.version,
                config=config,
                namespace=self.namespace,
                username=model.created_by,
            )
            self.objects.create(self.namespace, manifest)
        else:
            patch = k8s.train_patch(model_id=model.id, version=model.version, config=config, username=model.created_by)
            self.objects.patch(self.namespace, name, patch)
        model.resource_name = name

    def submit_export(self, session: Session, model: RegistryModel, username: str) -> None:
        # The operator exports right after training; this only changes how (e.g. INT8) for the next run.
        self.objects.patch(self.namespace, self._name(model), k8s.export_patch(model.config or {}))
        registry.touch(model, username, state=registry.EXPORT_QUEUED)

    def activated(self, model: RegistryModel, previous: RegistryModel | None) -> str:
        patch = k8s.activate_patch(
            model_id=model.id,
            version=model.version,
            artifact_uri=model.artifact_uri or "",
            sha256=model.sha256,
            username=model.updated_by,
        )
        self.objects.patch(self.namespace, self._name(model), patch)
        return "patched: the operator rolls the version out through its canary"

    def sync(self, session: Session) -> int:
        changed = 0
        resources: dict[str, dict[str, Any] | None] = {}
        rows = session.execute(select(RegistryModel).where(RegistryModel.resource_name.is_not(None))).scalars()
        for model in rows:
            name = self._name(model)
            if name not in resources:
                try:
                    resources[name] = self.objects.get(self.namespace, name)
                except Exception as exc:  # the API server being away leaves the last known state
                    log.warning("cannot read %s/%s: %s", self.namespace, name, exc)
                    resources[name] = None
            resource = resources[name]
            if resource is None:
                continue
            changes = k8s.registry_changes(resource, model.version, model.state)
            if changes:
                registry.touch(model, "operator", **changes)
                changed += 1
        return changed

    @staticmethod
    def _name(model: RegistryModel) -> str:
        return model.resource_name or k8s.resource_name(model.name)


def make_backend(mode: str, *, namespace: str, active_model_dir: Path) -> RegistryBackend:
    resolved = ("kubernetes" if k8s.in_cluster() else "embedded") if mode == "auto" else mode
    if resolved == "kubernetes":
        return KubernetesBackend(k8s.KubernetesCustomObjects(), namespace)
    if resolved == "embedded":
        return EmbeddedBackend(active_model_dir)
    raise ValueError(f"unknown registry mode {mode!r} (auto, embedded or kubernetes)")
