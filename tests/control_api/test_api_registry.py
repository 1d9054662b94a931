"""Registry rules, the embedded command runner with a real small command, and the in-cluster manifests."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from api_support import REPO, factory_for, fake_evaluate_command, fake_pipeline_script, login, with_
from sqlalchemy.orm import Session, sessionmaker

from control_api import k8s, registry, runner
from control_api.backends import KubernetesBackend
from control_api.db import session_scope
from control_api.models import RegistryModel
from control_api.settings import Settings
from voiceflow.bundle import verify_bundle


def test_render_command_fills_placeholders_per_argument() -> None:
    argv = runner.render_command(
        "{python} -m x --config {config} --out '{output_dir}'", config="/a b/c.json", output_dir="/o u t"
    )
    assert argv == [sys.executable, "-m", "x", "--config", "/a b/c.json", "--out", "/o u t"]
    with pytest.raises(ValueError, match="placeholder"):
        runner.render_command("train {nope}")


def test_find_checkpoint(tmp_path: Path) -> None:
    assert runner.find_checkpoint(tmp_path) == tmp_path
    (tmp_path / "weights.ckpt").write_bytes(b"x")
    assert runner.find_checkpoint(tmp_path) == tmp_path / "weights.ckpt"
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    assert runner.find_checkpoint(tmp_path) == tmp_path / "checkpoint.pt"
    (tmp_path / "model.pt").write_bytes(b"x")
    assert runner.find_checkpoint(tmp_path) == tmp_path / "model.pt"


def pipeline_settings(db_settings: Settings, tmp_path: Path, **changes: Any) -> Settings:
    """The settings with the fake pipeline's train and export commands (tests/control_api/api_support.py)."""
    train_cmd, export_cmd = fake_pipeline_script(tmp_path)
    return with_(db_settings, train_command=train_cmd, export_command=export_cmd, **changes)


def queued_for_training(settings: Settings, config: dict[str, Any]) -> tuple[sessionmaker[Session], str]:
    """A migrated database holding one model, queued for training with `config`: its sessions and id."""
    factory = factory_for(settings)
    with session_scope(factory) as session:
        model_id = registry.new_model(session, "m", config, "ann", registry.TRAIN_QUEUED).id
    return factory, model_id


def test_embedded_train_and_export_run_the_commands(db_settings: Settings, tmp_path: Path) -> None:
    settings = pipeline_settings(db_settings, tmp_path)
    factory, model_id = queued_for_training(settings, {"epochs": 3})
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
        assert model is not None
        assert model.state == registry.EXPORTED, model.error
        onnx = Path((model.artifact_uri or "").removeprefix("file://"))
        # The registry records the sealed bundle's digest (the exporter wrote no index: the runner sealed it).
        bundle = verify_bundle(onnx)
        assert bundle.indexed and model.sha256 == bundle.digest
        assert bundle.parts["model"].sha256 == hashlib.sha256(onnx.read_bytes()).hexdigest()
        assert model.metrics["der"] == 0.081 and model.metrics["epochs"] == 3
        # Numeric figures of the exporter's metadata are kept; names, paths and flags are not.
        assert model.metrics["opset"] == 17 and "source" not in model.metrics and "quantized" not in model.metrics
        assert model.claimed_by == "r1" and model.lease_expires_at is None


def test_a_failing_train_command_fails_the_model_with_its_output(db_settings: Settings, tmp_path: Path) -> None:
    settings = pipeline_settings(db_settings, tmp_path)
    factory, model_id = queued_for_training(settings, {"fail": True})
    runner.process_next(factory, settings, worker_id="r1")
    with session_scope(factory) as session:
        model = session.get(RegistryModel, model_id)
        assert model is not None and model.state == registry.FAILED
        assert "loss is NaN" in (model.error or "")


@pytest.mark.parametrize("refused", [False, True], ids=["gate-passes", "gate-refuses"])
def test_export_runs_the_evaluation_gate_when_configured(db_settings: Settings, tmp_path: Path, refused: bool) -> None:
    settings = pipeline_settings(db_settings, tmp_path, evaluate_command=fake_evaluate_command(tmp_path))
    factory, model_id = queued_for_training(settings, {"note": "refuse"} if refused else {})
    runner.process_next(factory, settings, worker_id="r")
    with session_scope(factory) as session:
        row = session.get(RegistryModel, model_id)
        assert row is not None
        row.state = registry.EXPORT_QUEUED
    runner.process_next(factory, settings, worker_id="r")
    with session_scope(factory) as session:
        row = session.get(RegistryModel, model_id)
        assert row is not None
        if refused:
            assert row.state == registry.FAILED and "gate REFUSED" in (row.error or "")
        else:
            assert row.state == registry.EXPORTED, row.error
            assert row.metrics["der.collar025"] == 0.12 and row.metrics["speed.ms_per_window_b32"] == 1.5


def test_flatten_numbers() -> None:
    report = {"der": {"dev": 0.1, "name": "x"}, "ok": True, "n": 3}
    assert runner.flatten_numbers(report) == {"der.dev": 0.1, "n": 3.0}


def model_in(state: str, **extra: Any) -> RegistryModel:
    return RegistryModel(id="id1", name="m", version=1, state=state, metrics={}, config={}, **extra)


@pytest.mark.parametrize("state", [registry.TRAIN_QUEUED, registry.TRAINING, registry.FAILED, registry.ACTIVE])
def test_only_trained_models_export(state: str) -> None:
    with pytest.raises(registry.TransitionError):
        registry.check_export(model_in(state, checkpoint_uri="file:///c"))


def test_only_exported_models_activate() -> None:
    with pytest.raises(registry.TransitionError):
        registry.check_activate(model_in(registry.TRAINED, checkpoint_uri="file:///c"))
    registry.check_activate(model_in(registry.EXPORTED, artifact_uri="file:///m.onnx"))


CRD = REPO / "crds" / "diarizationmodels.voiceflow.io.yaml"


def crd_schema() -> dict[str, Any]:
    if not CRD.exists():
        pytest.skip("the DiarizationModel CRD is not in this checkout")
    crd = yaml.safe_load(CRD.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def assert_valid_resource(resource: dict[str, Any]) -> None:
    """Checked against the CRD's structural schema, plus its CEL rule on training/model."""
    # OpenAPI v3.0 schemas are JSON Schema draft 4 (boolean exclusiveMinimum); x-kubernetes-* is ignored.
    jsonschema.Draft4Validator(crd_schema()).validate(resource)
    spec = resource["spec"]
    assert ("training" in spec) != ("model" in spec), "exactly one of spec.training / spec.model"


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch, as the API server applies it."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key) or {}, value)
        else:
            result[key] = value
    return result


def test_resource_names_are_dns_labels() -> None:
    assert k8s.resource_name("ge2e-call-center") == "ge2e-call-center"
    assert k8s.resource_name("Weird_Name!") == "weird-name"
    assert len(k8s.resource_name("a" * 100)) == 63


def test_manifest_of_a_new_model_matches_the_crd() -> None:
    config = {
        "dataset": "s3://data/ami",
        "preset": "tiny",
        "epochs": 5,
        "learningRate": 0.001,
        "quantize": "int8",
    }
    manifest = k8s.build_manifest(
        model_id="id1", name="meetings", version=2, config=config, namespace="ml", username="ann"
    )
    assert manifest == {
        "apiVersion": "voiceflow.io/v1alpha1",
        "kind": "DiarizationModel",
        "metadata": {
            "name": "meetings",
            "namespace": "ml",
            "labels": {
                "app.kubernetes.io/managed-by": "voiceflow-control-api",
                "app.kubernetes.io/part-of": "voiceflow",
            },
            "annotations": {"voiceflow.io/registry-id": "id1", "voiceflow.io/requested-by": "ann"},
        },
        "spec": {
            "version": "2",
            "training": {
                "dataset": "s3://data/ami",
                "preset": "tiny",
                "hyperparameters": {"epochs": 5, "learningRate": 0.001},
            },
            "export": {"quantize": "int8"},
        },
    }
    assert_valid_resource(manifest)


def test_in_cluster_training_needs_a_dataset_uri() -> None:
    for config in ({}, {"dataset": "/local/path"}):
        with pytest.raises(ValueError, match="dataset"):
            k8s.training_spec(config)
    # The API server would silently prune fields its schema does not know: refused here instead.
    with pytest.raises(ValueError, match=r"lr, hyperparameters\.momentum"):
        k8s.training_spec({"dataset": "pvc://d", "lr": 1, "hyperparameters": {"momentum": 0.9}})


def test_patches_keep_the_resource_valid() -> None:
    manifest = k8s.build_manifest(
        model_id="id1", name="m", version=1, config={"dataset": "pvc://data"}, namespace="ml", username="ann"
    )
    retrain = merge_patch(
        manifest, k8s.train_patch(model_id="id2", version=2, config={"dataset": "pvc://d"}, username="b")
    )
    assert retrain["spec"]["version"] == "2" and retrain["metadata"]["annotations"]["voiceflow.io/registry-id"] == "id2"
    assert_valid_resource(retrain)
    serve = merge_patch(
        retrain,
        k8s.activate_patch(model_id="id1", version=1, artifact_uri="s3://m/1.onnx", sha256="a" * 64, username="ann"),
    )
    assert serve["spec"]["model"] == {"uri": "s3://m/1.onnx", "sha256": "a" * 64} and "training" not in serve["spec"]
    assert_valid_resource(serve)


@pytest.mark.parametrize(
    ("spec_version", "status", "current", "expected"),
    [
        ("3", {"phase": "Training"}, "train_queued", {"state": "training"}),
        (
            "3",
            {"phase": "Exporting", "modelUri": "s3://m/3.onnx"},
            "training",
            {"state": "exporting", "artifact_uri": "s3://m/3.onnx"},
        ),
        (
            "3",
            {"phase": "Canary", "metrics": {"der": "0.081"}},
            "exporting",
            {"state": "exported", "metrics": {"der": 0.081}},
        ),
        (
            "3",
            {"phase": "Ready", "servedVersion": "3", "servedModelUri": "s3://m/3.onnx"},
            "exported",
            {"state": "active", "artifact_uri": "s3://m/3.onnx"},
        ),
        ("4", {"phase": "Canary", "servedVersion": "3"}, "active", {}),
        ("5", {"phase": "Ready", "servedVersion": "5"}, "active", {"state": "exported"}),
        # Just retargeted at 3: the status still describes version 2 until the operator catches up.
        ("3", {"phase": "Ready", "servedVersion": "2"}, "train_queued", {}),
        (
            "3",
            {"phase": "Failed", "conditions": [{"type": "Trained", "status": "False", "message": "OOM"}]},
            "training",
            {"state": "failed", "error": "OOM"},
        ),
    ],
)
def test_registry_mirrors_the_resource_status(
    spec_version: str, status: dict[str, Any], current: str, expected: dict[str, Any]
) -> None:
    assert k8s.registry_changes({"spec": {"version": spec_version}, "status": status}, 3, current) == expected


class RecordingObjects:
    """An in-memory stand-in for the cluster's custom objects API (the interface, not the client)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        assert_valid_resource(body)
        self.calls.append(("create", body["metadata"]["name"], body))
        self.objects[body["metadata"]["name"]] = body
        return body

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("patch", name, body))
        self.objects[name] = merge_patch(self.objects[name], body)
        assert_valid_resource({k: v for k, v in self.objects[name].items() if k != "status"})
        return self.objects[name]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(name)


def test_kubernetes_backend_over_http(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    objects = RecordingObjects()
    client = client_for(with_(db_settings, registry_mode="kubernetes"), backend=KubernetesBackend(objects, "ml"))
    admin = login(client)
    config = {"dataset": "s3://data/ami", "epochs": 3}
    assert client.post("/api/models/train", json={"name": "meetings", "config": {}}, headers=admin).status_code == 422
    first = client.post("/api/models/train", json={"name": "meetings", "config": config}, headers=admin).json()
    assert [c[0] for c in objects.calls] == ["create"] and first["resource_name"] == "meetings"
    resource = objects.objects["meetings"]
    resource["status"] = {
        "phase": "Ready",
        "servedVersion": "1",
        "servedModelUri": "s3://m/1.onnx",
        "metrics": {"der": "0.09"},
    }
    with session_scope(client.app.state.ctx.sessions) as session:
        assert client.app.state.ctx.backend.sync(session) == 1
    row = client.get(f"/api/models/{first['id']}", headers=admin).json()
    assert (row["state"], row["artifact_uri"], row["metrics"]) == ("active", "s3://m/1.onnx", {"der": 0.09})

    second = client.post("/api/models/train", json={"name": "meetings", "config": config}, headers=admin).json()
    assert objects.calls[-1][0] == "patch" and objects.objects["meetings"]["spec"]["version"] == "2"
    objects.objects["meetings"]["status"] = {
        "phase": "Canary",
        "servedVersion": "1",
        "modelUri": "s3://m/2.onnx",
    }
    with session_scope(client.app.state.ctx.sessions) as session:
        client.app.state.ctx.backend.sync(session)
    assert client.get(f"/api/models/{second['id']}", headers=admin).json()["state"] == "exported"
    # Roll back to version 1 by activating it: the resource now serves its exported ONNX model.
    client.put(f"/api/models/{second['id']}/activate", headers=admin)
    back = client.put(f"/api/models/{first['id']}/activate", headers=admin)
    assert back.status_code == 200, back.text
    assert objects.objects["meetings"]["spec"]["model"]["uri"] == "s3://m/1.onnx"
    assert objects.objects["meetings"]["spec"]["version"] == "1"


def test_cluster_api_failure_is_a_502_and_changes_nothing(
    db_settings: Settings, client_for: Callable[..., Any]
) -> None:
    class Down(RecordingObjects):
        def get(self, namespace: str, name: str) -> dict[str, Any] | None:
            raise ConnectionError("connection refused")

    client = client_for(with_(db_settings, registry_mode="kubernetes"), backend=KubernetesBackend(Down(), "ml"))
    admin = login(client)
    response = client.post("/api/models/train", json={"name": "m", "config": {"dataset": "s3://d"}}, headers=admin)
    assert response.status_code == 502 and "connection refused" in response.json()["detail"]
    assert client.get("/api/models", headers=admin).json()["total"] == 0
