"""`voiceflow up`: the embedded platform starts, streams the sample through the pod, and stops cleanly."""

import argparse
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from voiceflow.bundle import active_bundle, part_path, publish_bundle, verify_bundle, write_index
from voiceflow.embedding import DEFAULT_MODEL, EmbeddingModel, default_model_path
from voiceflow.rttm import parse_rttm
from voiceflow_cli.up import SEEDED_MARKER, plan_services, seed_active_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_plan_is_pod_plus_api_on_the_active_model_folder(tmp_path: Path) -> None:
    args = argparse.Namespace(host="127.0.0.1", pod_port=3001, api_port=8001)
    pod, api = plan_services(args, tmp_path / "active")
    assert pod.argv[3:5] == ["serve", "--host"] and str(tmp_path / "active") in pod.argv
    assert api.argv[3] == "api" and api.ready_url.endswith(":8001/health")


def test_seed_publishes_the_whole_default_bundle(tmp_path: Path) -> None:
    active = tmp_path / "active"
    assert seed_active_model(active).startswith("seeded")
    served = active_bundle(active)
    default = verify_bundle(default_model_path())
    # The bug this guards: only model.onnx + model.json were copied, so streaming ran without the
    # background mean and labelled every speaker SPEAKER_00.
    assert served is not None and served.digest == default.digest
    assert {"model", "metadata", "background"} <= set(served.roles)
    assert EmbeddingModel.load(active).background_mean is not None
    assert seed_active_model(active).startswith("kept (the bundled default)")


def test_seed_keeps_an_activated_model_and_reseeds_a_changed_default(tmp_path: Path) -> None:
    active = tmp_path / "active"
    seed_active_model(active)
    publish_bundle(DEFAULT_MODEL, active)  # what `PUT /api/models/{id}/activate` does
    assert seed_active_model(active).startswith("kept (a model activated")
    assert active_bundle(active).digest == verify_bundle(DEFAULT_MODEL).digest  # type: ignore[union-attr]
    # A marker from an older bundled default that is still the one served: the default changed.
    (active / SEEDED_MARKER).write_text(json.dumps({"digest": verify_bundle(DEFAULT_MODEL).digest}))
    assert seed_active_model(active).startswith("re-seeded (the bundled default changed)")
    assert active_bundle(active).digest == verify_bundle(default_model_path()).digest  # type: ignore[union-attr]


def test_seed_replaces_the_loose_files_older_versions_copied(tmp_path: Path) -> None:
    active = tmp_path / "active"
    active.mkdir()
    (active / "model.onnx").write_bytes(default_model_path().read_bytes())
    (active / "model.json").write_text("{}")
    assert seed_active_model(active).startswith("seeded")
    assert not (active / "model.onnx").exists() and not (active / "model.json").exists()
    assert active_bundle(active) is not None


def test_seed_serves_a_model_promoted_into_the_model_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`up` seeds the engine's default, which a promotion moves from the package to the store."""
    store = tmp_path / "store"
    source = tmp_path / "export" / "cand.onnx"
    source.parent.mkdir()
    for role in ("model", "metadata", "background"):
        shutil.copyfile(part_path(DEFAULT_MODEL, role), part_path(source, role))
    write_index(source)
    promoted = publish_bundle(source, store)  # what `evaluate --promote` does once the gate passes
    monkeypatch.setenv("VOICEFLOW_MODEL_STORE", str(store))
    active = tmp_path / "active"
    assert seed_active_model(active).startswith("seeded")
    assert active_bundle(active).digest == promoted.digest != verify_bundle(DEFAULT_MODEL).digest  # type: ignore[union-attr]


def segments_of_demo(stdout: str) -> list[tuple[float, float, str]]:
    """The segments of the pod's closing `final` message, as `voiceflow stream` prints them."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("final ("))
    count = int(lines[start].split(":")[1].split()[0])
    rows = [line.split() for line in lines[start + 1 : start + 1 + count]]
    return [(float(a), float(b), speaker) for a, b, speaker in rows]


def segments_of_rttm(text: str) -> list[tuple[float, float, str]]:
    (segments,) = parse_rttm(text).values()
    return [(round(s.start, 2), round(s.end, 2), s.speaker) for s in segments]


@pytest.mark.parametrize("pipeline", [None, "segmentation"])
def test_up_demo_end_to_end(tmp_path: Path, pipeline: str | None) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voiceflow_cli.main",
            "up",
            "--state-dir",
            str(tmp_path / "state"),
            "--pod-port",
            str(free_port()),
            "--api-port",
            str(free_port()),
            "--demo",
            "--exit-after-demo",
            *(["--pipeline", pipeline] if pipeline else []),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "voiceflow up: ready" in result.stdout
    demo = segments_of_demo(result.stdout)
    # The demo gives, segment for segment, what the engine gives off the pod for the same pipeline.
    engine = subprocess.run(
        [
            sys.executable,
            "-m",
            "voiceflow_cli.main",
            "diarize",
            "--sample",
            "--streaming",
            *(["--pipeline", pipeline] if pipeline else []),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    expected = segments_of_rttm(engine.stdout)
    assert [(round(a, 2), round(b, 2), s) for a, b, s in demo] == [
        (pytest.approx(a, abs=0.011), pytest.approx(b, abs=0.011), s) for a, b, s in expected
    ]
    if pipeline is None:
        # The README's first command: the bundled sample has three speakers, and the demo finds three.
        assert len({speaker for _, _, speaker in demo}) == 3
