"""Registry rules, the embedded command runner with a real small command, and the in-cluster manifests."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest
from api_support import fake_pipeline_script, with_

from control_api import k8s, registry, runner
from control_api.backends import KubernetesBackend
from control_api.db import make_engine, make_sessionmaker, migrate, session_scope
from control_api.models import RegistryModel
from control_api.settings import Settings


def test_render_command_fills_placeholders_per_argument() -> None:
    argv = runner.render_command(
        "{python} -m x --config {config} --out '{output_dir}'", config="/a b/c.json", output_dir="/o u t"
    )
    assert argv == [sys.executable, "-m", "x", "--config", "/a b/c.json", "--out", "/o u t"]
    with pytest.raises(ValueError, match="placeholder"):
        runner.render_command("train {nope}")


def test_find_checkpoint(tmp_path: Path) -> None:
    assert runner.find_checkpoint(tmp_path) == tmp_path
    (tmp_path / "model.pt").write_bytes(b"x")
    assert runner.find_checkpoint(tmp_path) == tmp_path / "model.pt"


def test_embedded_train_and_export_run_the_commands(db_settings: Settings, tmp_path: Path) -> None:
    train_cmd, export_cmd = fake_pipeline_script(tmp_path)
    settings = with_(db_settings, train_command=train_cmd, export_command=export_cmd)
    engine = make_engine(settings)
    migrate(engine)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        model_id = registry.new_model(session, "m", {"epochs": 3}, "ann", registry.TRAIN_QUEUED).id
    assert runner.process_next(factory, settings, worker_id="r1")
    with session_scope(factory) as session:
        model = session.get(RegistryModel, model_id)
        assert model is not None
        assert model.state == registry.TRAINED, model.error
        assert model.metrics == {"train_loss": 0.12, "epochs": 3}
        assert model.checkpoint_uri and model.checkpoint_uri.endswith("/train/checkpoint.pt")
        registry.check_export(model)
        model.state = registry.EXPORT_QUEUED
    assert runner.process_next(factory, settings, worker_id="r1")
    assert not runner.process_next(factory, settings, worker_id="r1")
    with session_scope(factory) as session:
        model = session.get(RegistryModel, model_id)
        assert model is not None and model.state == registry.EXPORTED, model.error
        onnx = Path(model.artifact_uri.removeprefix("file://"))  # type: ignore[union-attr]
        assert model.sha256 == hashlib.sha256(onnx.read_bytes()).hexdigest()
        assert model.metrics["der"] == 0.081 and model.metrics["epochs"] == 3
        assert model.claimed_by == "r1" and model.lease_expires_at is None


def test_a_failing_train_command_fails_the_model_with_its_output(
    db_settings: Settings, tmp_path: Path
) -> None:
    train_cmd, export_cmd = fake_pipeline_script(tmp_path)
    settings = with_(db_settings, train_command=train_cmd, export_command=export_cmd)
    engine = make_engine(settings)
    migrate(engine)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        model_id = registry.new_model(session, "m", {"fail": True}, "ann", registry.TRAIN_QUEUED).id
    runner.process_next(factory, settings, worker_id="r1")
    with session_scope(factory) as session:
        model = session.get(RegistryModel, model_id)
        assert model is not None and model.state == registry.FAILED
        assert "loss is NaN" in (model.error or "")


def model_in(state: str, **extra: Any) -> RegistryModel:
    return RegistryModel(id="id1", name="m", version=1, state=state, metrics={}, config={}, **extra)


@pytest.mark.parametrize(
    "state", [registry.TRAIN_QUEUED, registry.TRAINING, registry.FAILED, registry.ACTIVE]
)
def test_only_trained_models_export(state: str) -> None:
    with pytest.raises(registry.TransitionError):
        registry.check_export(model_in(state, checkpoint_uri="file:///c"))


def test_only_exported_models_activate() -> None:
    with pytest.raises(registry.TransitionError):
        registry.check_activate(model_in(registry.TRAINED, checkpoint_uri="file:///c"))
    registry.check_activate(model_in(registry.EXPORTED, artifact_uri="file:///m.onnx"))


def test_resource_names_are_dns_labels() -> None:
    assert k8s.resource_name("ge2e-call-center", 12) == "ge2e-call-center-v12"
    assert k8s.resource_name("Weird_Name!", 1) == "weird-name-v1"
    long = k8s.resource_name("a" * 100, 3)
    assert len(long) == 63 and long.endswith("-v3")


def test_manifest_of_a_new_model() -> None:
    manifest = k8s.build_manifest(
        model_id="id1", name="ge2e", version=2, config={"epochs": 5}, namespace="ml", username="ann"
    )
    assert manifest == {
        "apiVersion": "voiceflow.io/v1alpha1",
        "kind": "DiarizationModel",
        "metadata": {
            "name": "ge2e-v2",
            "namespace": "ml",
            "labels": {
                "app.kubernetes.io/managed-by": "voiceflow-control-api",
                "voiceflow.io/model-name": "ge2e",
            },
            "annotations": {"voiceflow.io/registry-id": "id1", "voiceflow.io/requested-by": "ann"},
        },
        "spec": {
            "modelName": "ge2e",
            "version": 2,
            "training": {"config": {"epochs": 5}},
            "export": {"enabled": False},
            "active": False,
        },
    }


class RecordingObjects:
    """An in-memory stand-in for the cluster's custom objects API (the interface, not the client)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create", body["metadata"]["name"], body))
        self.objects[body["metadata"]["name"]] = body
        return body

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("patch", name, body))
        return self.objects[name]

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self.objects[name]


def test_kubernetes_backend_creates_patches_and_mirrors_status(db_settings: Settings) -> None:
    engine = make_engine(db_settings)
    migrate(engine)
    factory = make_sessionmaker(engine)
    objects = RecordingObjects()
    backend = KubernetesBackend(objects, "ml")
    with session_scope(factory) as session:
        model = registry.new_model(session, "ge2e", {}, "ann", registry.TRAIN_QUEUED)
        backend.submit_train(session, model)
        model_id = model.id
    assert objects.calls[0][0] == "create" and objects.calls[0][1] == "ge2e-v1"
    objects.objects["ge2e-v1"]["status"] = {
        "phase": "Exported",
        "artifactUri": "s3://models/ge2e-v1.onnx",
        "sha256": "ab" * 32,
        "metrics": {"der": 0.09},
    }
    with session_scope(factory) as session:
        assert backend.sync(session) == 1
        model = session.get(RegistryModel, model_id)
        assert model is not None
        assert (model.state, model.artifact_uri, model.metrics) == (
            "exported",
            "s3://models/ge2e-v1.onnx",
            {"der": 0.09},
        )
        backend.activated(model, None)
    assert objects.calls[-1] == ("patch", "ge2e-v1", {"spec": {"active": True}})
