"""POST /api/models/train as the seed documents it, and the clear errors around it.

The seed's body `{"dataset_path", "version", "hyperparameters"}` maps onto the trainer's config, the
user's version string is kept as the model's label, a bad config is a 422 at request time naming the
key's path, and a server without the `train` extra says so with a 503.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import fake_pipeline_script, login, wait_for, with_

from control_api import training
from control_api.schemas import TrainRequest
from control_api.settings import Settings
from pipelines.training.config import config_from_dict

SEED_BODY = {
    "dataset_path": "/data/voiceflow",
    "version": "1.3.0",
    "hyperparameters": {"learning_rate": 0.0005, "batch_size": 32, "epochs": 3},
}


def test_the_seeds_body_trains_with_its_hyperparameters_and_keeps_its_label(
    db_settings: Settings, client_for: Callable[..., Any], tmp_path: Path
) -> None:
    train_cmd, export_cmd = fake_pipeline_script(tmp_path)
    client = client_for(with_(db_settings, train_command=train_cmd, export_command=export_cmd, embedded_workers=1))
    admin = login(client)
    created = client.post("/api/models/train", json=SEED_BODY, headers=admin)
    assert created.status_code == 202, created.text
    model = created.json()
    assert (model["name"], model["version"], model["label"]) == ("voiceflow", 1, "1.3.0")
    assert model["config"] == {"data": {"data_root": "/data/voiceflow"}, "lr": 0.0005, "batch_size": 32, "epochs": 3}
    # What the worker hands `voiceflow train --config` is a config the trainer itself accepts.
    trainer = config_from_dict(model["config"])
    assert (trainer.lr, trainer.batch_size, trainer.epochs, trainer.data.data_root) == (
        0.0005,
        32,
        3,
        "/data/voiceflow",
    )
    trained = wait_for(
        lambda: (
            (body := client.get(f"/api/models/{model['id']}", headers=admin).json())["state"] != "train_queued"
            and body["state"] != "training"
            and body
        )
    )
    assert trained["state"] == "trained", trained["error"]
    assert trained["metrics"]["epochs"] == 3 and trained["label"] == "1.3.0"
    written = json.loads((db_settings.storage_dir / "models" / model["id"] / "config.json").read_text())
    assert written == model["config"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"config": {"data": {"sampling": "random"}}}, ["body", "config", "data", "sampling"]),
        ({"config": {"data": {"data_rot": "/d"}}}, ["body", "config", "data", "data_rot"]),
        ({"config": {"lr": "fast"}}, ["body", "config", "lr"]),
        ({"config": {"augment": {"snr_db": [5]}}}, ["body", "config", "augment", "snr_db", 1]),
        ({**SEED_BODY, "hyperparameters": {"learning_rate": "fast"}}, ["body", "hyperparameters", "learning_rate"]),
        ({**SEED_BODY, "hyperparameters": {"momentum": 0.9}}, ["body", "hyperparameters", "momentum"]),
        ({**SEED_BODY, "hyperparameters": {"epochs": 0}}, ["body", "hyperparameters", "epochs"]),
        ({**SEED_BODY, "config": {"epochs": 5}}, ["body", "hyperparameters", "epochs"]),
        ({**SEED_BODY, "dataset": "/d"}, ["body", "dataset"]),
        ({**SEED_BODY, "config": {"data": "/d"}}, ["body", "config", "data"]),
    ],
    ids=[
        "cross-field",
        "unknown-nested-key",
        "wrong-type",
        "tuple-length",
        "seed-type",
        "seed-unknown",
        "seed-range",
        "set-twice",
        "unknown-top-level",
        "seed-into-non-object",
    ],
)
def test_an_invalid_config_is_a_422_at_request_time_naming_the_key(
    db_settings: Settings, client_for: Callable[..., Any], body: dict[str, Any], loc: list[Any]
) -> None:
    client = client_for(db_settings)
    admin = login(client)
    response = client.post("/api/models/train", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["detail"]], response.json()
    assert client.get("/api/models", headers=admin).json()["total"] == 0, "nothing was queued"


def test_without_the_train_extra_training_is_a_clear_503(
    db_settings: Settings, client_for: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(db_settings)  # the default train command: `{python} -m voiceflow_cli.main train`
    admin = login(client)
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` sees on an install without it
    response = client.post("/api/models/train", json=SEED_BODY, headers=admin)
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "'train' extra" in detail and "torch" in detail and "voiceflow[train]" in detail
    assert client.get("/api/models", headers=admin).json()["total"] == 0
    monkeypatch.delitem(sys.modules, "torch")
    assert client.post("/api/models/train", json=SEED_BODY, headers=admin).status_code == 202


def test_an_external_train_command_needs_no_local_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(training.MissingExtra):
        training.check_train_extra("{python} -m voiceflow_cli.main train --config {config}")
    training.check_train_extra("/opt/trainer/bin/train {config} {output_dir}")


def test_in_cluster_the_seeds_body_becomes_the_crds_training_spec() -> None:
    from control_api import k8s

    config = training.resolve_config(TrainRequest.model_validate({**SEED_BODY, "name": "meetings"}), "kubernetes")
    assert k8s.training_spec(config) == {
        "dataset": "file:///data/voiceflow",
        "hyperparameters": {"learningRate": 0.0005, "batchSize": 32, "epochs": 3},
    }
    uri = training.resolve_config(TrainRequest(dataset_path="s3://bucket/ami"), "kubernetes")
    assert uri == {"dataset": "s3://bucket/ami"}
    bad = TrainRequest.model_validate({**SEED_BODY, "config": {"hyperparameters": 5}})
    with pytest.raises(training.ConfigError, match=r"config\.hyperparameters: must be an object"):
        training.resolve_config(bad, "kubernetes")


class Objects:
    """The Kubernetes API as the registry uses it: resources by name."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.objects[body["metadata"]["name"]] = body
        return body

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("a first train creates its resource")

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(name)


def test_in_cluster_training_needs_no_local_torch(
    db_settings: Settings, client_for: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator trains in its own pods: a control API image without the train extra is complete."""
    from control_api.backends import KubernetesBackend

    objects = Objects()
    client = client_for(with_(db_settings, registry_mode="kubernetes"), backend=KubernetesBackend(objects, "ml"))
    admin = login(client)
    monkeypatch.setitem(sys.modules, "torch", None)
    response = client.post("/api/models/train", json={**SEED_BODY, "name": "meetings"}, headers=admin)
    assert response.status_code == 202, response.text
    assert response.json()["label"] == "1.3.0"
    assert objects.objects["meetings"]["spec"]["training"] == {
        "dataset": "file:///data/voiceflow",
        "hyperparameters": {"learningRate": 0.0005, "batchSize": 32, "epochs": 3},
    }
