"""The model registry over HTTP: train -> export -> activate with the background worker, and its errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api_support import fake_pipeline_script, login, wait_for, with_

from control_api.settings import Settings
from voiceflow.bundle import active_bundle


def wait_state(client: Any, headers: dict[str, str], model_id: str, state: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/models/{model_id}", headers=headers).json()
        assert body["state"] != "failed", body["error"]
        return body if body["state"] == state else None

    body: dict[str, Any] = wait_for(check)
    return body


def test_full_model_lifecycle(db_settings: Settings, client_for: Callable[..., Any], tmp_path: Path) -> None:
    train_cmd, export_cmd = fake_pipeline_script(tmp_path)
    active_dir = tmp_path / "serving"  # what `voiceflow serve --model <dir>` would watch
    settings = with_(
        db_settings,
        train_command=train_cmd,
        export_command=export_cmd,
        embedded_workers=1,
        active_model_dir=str(active_dir),
    )
    client = client_for(settings)
    admin = login(client)
    created = client.post("/api/models/train", json={"name": "ge2e", "config": {"epochs": 2}}, headers=admin)
    assert created.status_code == 202
    first = created.json()
    assert (first["name"], first["version"], first["created_by"]) == ("ge2e", 1, "admin")
    trained = wait_state(client, admin, first["id"], "trained")
    assert trained["metrics"]["epochs"] == 2 and trained["checkpoint_uri"].endswith("checkpoint.pt")

    # Export is only for trained models; activate only for exported ones.
    assert client.put(f"/api/models/{first['id']}/activate", headers=admin).status_code == 409
    assert client.post(f"/api/models/{first['id']}/export", headers=admin).status_code == 202
    exported = wait_state(client, admin, first["id"], "exported")
    assert len(exported["sha256"]) == 64 and exported["artifact_uri"].endswith("model.onnx")
    assert exported["metrics"]["der"] == 0.081

    activated = client.put(f"/api/models/{first['id']}/activate", headers=admin)
    assert activated.status_code == 200, activated.text
    assert activated.json()["model"]["state"] == "active"
    served = active_bundle(active_dir)
    assert served is not None and activated.json()["reload"] == f"published to {served.model_path}"
    # The registry's identity is the whole bundle's digest, and the served bundle is that one.
    assert served.digest == exported["sha256"] and served.roles == ["metadata", "model"]
    assert json.loads((active_dir / "current" / "model.json").read_text())["opset"] == 17

    # A second version replaces the first as the active one.
    second = client.post("/api/models/train", json={"name": "ge2e"}, headers=admin).json()
    assert second["version"] == 2
    wait_state(client, admin, second["id"], "trained")
    client.post(f"/api/models/{second['id']}/export", headers=admin)
    wait_state(client, admin, second["id"], "exported")
    swap = client.put(f"/api/models/{second['id']}/activate", headers=admin).json()
    assert swap["previous_id"] == first["id"]
    listing = client.get("/api/models", headers=admin).json()
    assert listing["total"] == 2
    assert {m["id"]: m["state"] for m in listing["items"]} == {
        first["id"]: "exported",
        second["id"]: "active",
    }
    assert client.get("/api/models?state=active", headers=admin).json()["items"][0]["id"] == second["id"]
    now_served = active_bundle(active_dir)
    assert now_served is not None and now_served.digest == swap["model"]["sha256"]
    assert not [p for p in active_dir.iterdir() if p.name.startswith(".")], "no staging files left"


def test_failed_training_is_reported(db_settings: Settings, client_for: Callable[..., Any], tmp_path: Path) -> None:
    train_cmd, export_cmd = fake_pipeline_script(tmp_path)
    client = client_for(with_(db_settings, train_command=train_cmd, export_command=export_cmd, embedded_workers=1))
    admin = login(client)
    model = client.post("/api/models/train", json={"name": "bad", "config": {"name": "diverges"}}, headers=admin).json()
    failed = wait_for(
        lambda: (body := client.get(f"/api/models/{model['id']}", headers=admin).json())["state"] == "failed" and body
    )
    assert "loss is NaN" in failed["error"]
    assert client.post(f"/api/models/{model['id']}/export", headers=admin).status_code == 409


def test_unknown_model_and_invalid_name(db_settings: Settings, client_for: Callable[..., Any]) -> None:
    client = client_for(db_settings)
    admin = login(client)
    assert client.get("/api/models/no-such-id", headers=admin).status_code == 404
    assert client.post("/api/models/no-such-id/export", headers=admin).status_code == 404
    assert client.put("/api/models/no-such-id/activate", headers=admin).status_code == 404
    assert client.post("/api/models/train", json={"name": "Not A DNS Name"}, headers=admin).status_code == 422
