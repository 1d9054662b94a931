"""VOICEFLOW_ENGINE_CONFIG: the engine's settings for the pod's streams and /infer from a file (a
ConfigMap), read as `voiceflow diarize --config` reads it. A stream on such a pod gives what the
CLI's streaming run gives with the same file; a bad file stops the pod at start-up, naming the
variable, and loses nothing that was serving."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from pod_support import ROOT, running_pod

from inference_pod.settings import Settings
from inference_pod.workers import worker_settings
from voiceflow.config import MAX_CONFIG_BYTES, load_engine_config

pytestmark = pytest.mark.timeout(240)

CAPACITY = "streaming:\n  embedding_hops: 2\n  clustering: {confirm_windows: 2}\n"


def config_file(tmp_path: Path, text: str | bytes, name: str = "engine.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_a_stream_on_the_pod_is_the_cli_streaming_run_with_the_same_file(tmp_path: Path) -> None:
    from inference_pod.client import stream_samples
    from voiceflow.audio import load_audio
    from voiceflow.selection import stream_audio

    path = config_file(tmp_path, CAPACITY)
    audio = load_audio(ROOT / "tests" / "data" / "dev00.wav")[: 16000 * 15].astype(np.float32)
    with running_pod(engine_config=str(path), max_realtime_factor=50.0, realtime_burst_seconds=60.0) as pod:
        outcome = asyncio.run(stream_samples(audio, pod.ws, speed=0, chunk_seconds=0.13))
        assert outcome.final is not None and not outcome.errors, outcome.errors
        assert httpx.get(f"{pod.http}/ready", timeout=10).json()["pipeline"] == "embedding"
        model = pod.pod.model.model
        assert pod.pod.model.config.streaming.embedding_hops == 2
    config = load_engine_config(path)
    expected = [
        {"start": s.start, "end": s.end, "speaker": s.speaker, "final": True}
        for s in stream_audio(audio, model, config)
    ]
    assert outcome.final == expected
    # and the file made a difference: the defaults stream something else
    default = stream_audio(audio, model, load_engine_config(config_file(tmp_path, "{}\n", "empty.yaml")))
    assert [(s.start, s.end, s.speaker) for s in default] != [(s["start"], s["end"], s["speaker"]) for s in expected]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("streaming: {embedding_hops: 0}\n", r"embedding_hops"),
        ("streaming: {embedding_hops: two}\n", r"embedding_hops"),
        ("streming: {}\n", r"streming"),
        ("pipeline: segmentation\n", r"pipeline: set by the service's own pipeline setting"),
        ("streaming: [1, 2\n", r"not valid YAML"),
        (b"\xff\xfe\x00streaming", r"not UTF-8"),
        ("- just\n- a list\n", r"mapping"),
        ("a: &a [*a, *a]\n", r"a: unknown setting"),  # a self-referencing alias: refused by name
    ],
)
def test_a_bad_file_is_a_startup_error_naming_the_variable(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = config_file(tmp_path, content)
    with pytest.raises(ValueError, match=r"VOICEFLOW_ENGINE_CONFIG") as info:
        Settings.from_env({"VOICEFLOW_ENGINE_CONFIG": str(path)})
    assert info.match(message)


def test_the_file_is_read_once_and_the_version_validated_is_the_one_served(tmp_path: Path) -> None:
    from inference_pod.pod import Pod

    path = config_file(tmp_path, CAPACITY)
    settings = Settings.from_env({"VOICEFLOW_ENGINE_CONFIG": str(path), "VOICEFLOW_PIPELINE": "embedding"})
    assert settings.engine == load_engine_config(path, "embedding")
    assert settings.engine.streaming.embedding_hops == 2
    path.write_text("streaming: {embedding_hops: 0}\n")  # swapped after start-up validation: never read
    worker = worker_settings(settings, 2)  # each worker's settings: the limits split, the file not re-read
    assert worker.engine == settings.engine and worker.engine_config == str(path)
    assert worker.max_connections == -(-settings.max_connections // 2)
    pod = Pod(settings)
    try:
        assert pod.models.config == settings.engine
    finally:
        asyncio.run(pod.stop())
    assert Settings.from_env({}).engine == load_engine_config(config_file(tmp_path, "{}\n", "empty.yaml"))


def test_missing_oversized_and_directory_paths_are_refused(tmp_path: Path) -> None:
    big = config_file(tmp_path, "# " + "x" * MAX_CONFIG_BYTES + "\n", "big.yaml")
    for path, message in (
        (tmp_path / "missing.yaml", "no such config file"),
        (big, "larger than"),
        (tmp_path, "no such"),
    ):
        with pytest.raises(ValueError, match=message):
            Settings.from_env({"VOICEFLOW_ENGINE_CONFIG": str(path)})


def test_the_pod_process_exits_2_with_one_line_on_a_bad_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, "streaming: {embedding_hops: 99}\n")
    env = {**os.environ, "VOICEFLOW_ENGINE_CONFIG": str(path), "VOICEFLOW_PORT": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "inference_pod"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "VOICEFLOW_ENGINE_CONFIG" in proc.stderr and "embedding_hops" in proc.stderr
    assert "Traceback" not in proc.stderr
