"""After `PUT /api/models/{id}/activate`, the pod serves that model bundle: its results equal
`voiceflow diarize --model <that bundle>` on the same audio, and /ready names the bundle."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_support import ADMIN_PASSWORD, login, wait_for
from fastapi.testclient import TestClient

from control_api.app import build_context, create_app
from control_api.settings import Settings
from voiceflow.bundle import active_bundle
from voiceflow.embedding import DEFAULT_MODEL
from voiceflow.rttm import parse_rttm
from voiceflow_cli.up import seed_active_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
SAMPLE = Path(__file__).resolve().parents[2] / "voiceflow" / "samples" / "conversation.wav"

# An exporter that writes a real model's parts as `model.*` and leaves the sealing to the registry.
COPY_EXPORT = f"""
import pathlib, shutil, sys
source, out = pathlib.Path({str(DEFAULT_MODEL)!r}), pathlib.Path(sys.argv[2])
shutil.copyfile(source, out)
for suffix in (".json", ".background.npy"):
    shutil.copyfile(source.with_name("ge2e" + suffix), out.with_name("model" + suffix))
"""
FAKE_TRAIN = """
import pathlib, sys
(pathlib.Path(sys.argv[2]) / "checkpoint.pt").write_bytes(b"weights")
"""


def test_activated_bundle_is_what_the_pod_serves(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference_pod"))
    from pod_support import running_pod

    (tmp_path / "export.py").write_text(COPY_EXPORT)
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    active = tmp_path / "active"
    seed_active_model(active)  # the pod starts on the bundled default, as under `voiceflow up`
    settings = Settings(
        state_dir=tmp_path / "state",
        admin_password=ADMIN_PASSWORD,
        embedded_workers=1,
        poll_interval_s=0.1,
        active_model_dir=str(active),
        train_command=f"{{python}} {tmp_path / 'train.py'} {{config}} {{output_dir}}",
        export_command=f"{{python}} {tmp_path / 'export.py'} {{checkpoint}} {{output}}",
    )
    with running_pod(model_path=str(active)) as pod, TestClient(create_app(context=build_context(settings))) as api:
        before = httpx.get(f"{pod.http}/ready").json()["model_bundle_digest"]
        admin = login(api)
        model_id = api.post("/api/models/train", json={"name": "ge2e"}, headers=admin).json()["id"]

        def state() -> str:
            return str(api.get(f"/api/models/{model_id}", headers=admin).json()["state"])

        wait_for(lambda: state() == "trained", timeout_s=60)
        assert api.post(f"/api/models/{model_id}/export", headers=admin).status_code == 202
        wait_for(lambda: state() == "exported", timeout_s=60)
        exported = api.get(f"/api/models/{model_id}", headers=admin).json()
        assert api.put(f"/api/models/{model_id}/activate", headers=admin).status_code == 200
        served = active_bundle(active)
        assert served is not None and served.digest == exported["sha256"] != before

        deadline = time.monotonic() + 60
        while httpx.get(f"{pod.http}/ready").json()["model_bundle_digest"] != served.digest:
            assert time.monotonic() < deadline, "the pod did not hot-reload the activated bundle"
            time.sleep(0.2)
        ready = httpx.get(f"{pod.http}/ready").json()
        assert set(ready["model_bundle_parts"]) == {"model", "metadata", "background"}
        answer = httpx.post(
            f"{pod.http}/infer", content=SAMPLE.read_bytes(), headers={"content-type": "audio/wav"}, timeout=120
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_bundle_digest"] == served.digest

    artifact = exported["artifact_uri"].removeprefix("file://")
    cli = subprocess.run(
        [sys.executable, "-m", "voiceflow_cli.main", "diarize", str(SAMPLE), "--model", artifact],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    (segments,) = parse_rttm(cli.stdout).values()
    expected = [(round(s.start, 3), round(s.end, 3), s.speaker) for s in segments]
    got = [
        (round(s["start"], 3), round(s["start"] + round(s["end"] - s["start"], 3), 3), s["speaker"])
        for s in answer.json()["segments"]
    ]
    assert len(expected) >= 3 and len({s for *_, s in expected}) >= 2
    assert [(pytest.approx(a, abs=2e-3), pytest.approx(b, abs=2e-3), s) for a, b, s in got] == expected
