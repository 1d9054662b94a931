"""The pod serving the overlap-aware segmentation pipeline (VOICEFLOW_PIPELINE=segmentation).

A tiny untrained segmentation model (conftest) stands in for the bundled one: what is checked is
the plumbing (the pod's `final` == the CLI's streaming run, /infer == the offline pipeline,
overlapping segments delivered intact, clear refusals), never the model's quality or speed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pod_support import ROOT, RunningPod, infer_wav, running_pod
from prometheus_client.parser import text_string_to_metric_families

from inference_pod.model_manager import LoadedModel, ModelError
from inference_pod.pod import Pod
from inference_pod.settings import Settings
from inference_pod.stream import _newest
from voiceflow.config import DEFAULT_PIPELINE, EngineConfig
from voiceflow.segments import Segment

pytestmark = pytest.mark.timeout(240)

DEV = ROOT / "tests" / "data" / "dev00.wav"


def dev_audio(seconds: float) -> np.ndarray:
    from voiceflow.audio import load_audio

    return load_audio(DEV)[: int(seconds * 16000)].astype(np.float32)


def overlapping_pairs(segments: list[dict[str, Any]]) -> int:
    return sum(
        1
        for a in segments
        for b in segments
        if a["speaker"] < b["speaker"] and a["start"] < b["end"] and b["start"] < a["end"]
    )


def segmentation_pod(model_file: Path, **settings: Any) -> AbstractContextManager[RunningPod]:
    """A segmentation pod that accepts unpaced streams (tests send audio faster than real time)."""
    return running_pod(
        pipeline="segmentation",
        segmentation_model_path=str(model_file),
        idle_timeout_seconds=3.0,
        max_realtime_factor=50.0,
        realtime_burst_seconds=60.0,
        **settings,
    )


@pytest.fixture(scope="module")
def seg_pod(segmentation_model_file: Path) -> Iterator[RunningPod]:
    with segmentation_pod(segmentation_model_file) as p:
        yield p


def test_server_final_equals_the_cli_segmentation_streaming_run(
    seg_pod: RunningPod, segmentation_model_file: Path
) -> None:
    from inference_pod.client import stream_samples
    from voiceflow.config import EngineConfig
    from voiceflow.segmentation.model import SegmentationModel
    from voiceflow.selection import stream_audio

    audio = dev_audio(20.0)
    # 0.13 s frames, unpaced: frames never line up with the engine's blocks, and late steps merge
    outcome = asyncio.run(stream_samples(audio, seg_pod.ws, speed=0, chunk_seconds=0.13))
    assert outcome.final is not None and not outcome.errors, outcome.errors
    assert outcome.ready is not None and outcome.ready["model_version"] == seg_pod.pod.model.version

    config = EngineConfig(pipeline="segmentation")
    seg = SegmentationModel.load(segmentation_model_file)
    segments = stream_audio(audio, seg_pod.pod.model.model, config, seg)
    direct = [{"start": s.start, "end": s.end, "speaker": s.speaker, "final": True} for s in segments]
    assert direct
    assert outcome.final == direct
    assert overlapping_pairs(outcome.final) > 0  # the tiny model does say "two at once": it got through

    # Every segment a `result` sent as final is in `final` unchanged (identity = (speaker, start)),
    # and an open one is only ever re-sent with the same start and a later (or equal) end.
    latest: dict[tuple[str, float], dict[str, Any]] = {}
    for msg in outcome.results:
        for s in msg["segments"]:
            key = (s["speaker"], s["start"])
            if key in latest:
                assert not latest[key]["final"], f"{key} re-sent after it was final"
                assert s["end"] >= latest[key]["end"]
            latest[key] = s
    final_by_key = {(s["speaker"], s["start"]): s for s in outcome.final}
    sent_final = [s for s in latest.values() if s["final"]]
    assert sent_final
    for s in sent_final:
        assert final_by_key[(s["speaker"], s["start"])] == s


@pytest.fixture(scope="module")
def batching_seg_pod(segmentation_model_file: Path) -> Iterator[RunningPod]:
    """The segmentation pod with batchers that wait 30 ms for other streams' calls: the tiny
    network is so fast that without a wait concurrent streams' calls would rarely meet."""
    with segmentation_pod(segmentation_model_file, batch_wait_ms=30.0) as p:
        yield p


def test_concurrent_streams_finals_equal_the_cli_run_with_the_network_batched_across_streams(
    batching_seg_pod: RunningPod, segmentation_model_file: Path
) -> None:
    """Several streams at once share segmentation-network (and embedding) calls; a batch only ever
    holds chunks of one length, so each stream's `final` is still exactly its own CLI run."""
    seg_pod = batching_seg_pod
    from inference_pod.client import stream_samples
    from voiceflow.audio import load_audio
    from voiceflow.config import EngineConfig
    from voiceflow.segmentation.model import SegmentationModel
    from voiceflow.selection import stream_audio

    full = load_audio(DEV).astype(np.float32)
    # different audio per stream; staggered starts, so some streams are still in their first,
    # shorter chunks (< 5 s) while others send full ones
    clips = [full[int(i * 3.0 * 16000) : int((i * 3.0 + 12.0) * 16000)] for i in range(4)]
    registry = seg_pod.pod.metrics.registry
    calls0 = registry.get_sample_value("inference_segmentation_batch_size_count") or 0.0
    chunks0 = registry.get_sample_value("inference_segmentation_batch_size_sum") or 0.0

    async def one(i: int) -> Any:
        await asyncio.sleep(0.3 * i)
        return await stream_samples(clips[i], seg_pod.ws, speed=0, chunk_seconds=0.1 + 0.03 * i)

    async def all_streams() -> list[Any]:
        return list(await asyncio.gather(*(one(i) for i in range(len(clips)))))

    outcomes = asyncio.run(all_streams())
    calls = (registry.get_sample_value("inference_segmentation_batch_size_count") or 0.0) - calls0
    chunks = (registry.get_sample_value("inference_segmentation_batch_size_sum") or 0.0) - chunks0
    assert calls > 0 and chunks > calls  # the network ran through the batcher, some calls shared

    config = EngineConfig(pipeline="segmentation")
    seg = SegmentationModel.load(segmentation_model_file)
    for clip, outcome in zip(clips, outcomes, strict=True):
        assert outcome.final is not None and not outcome.errors, outcome.errors
        segments = stream_audio(clip, seg_pod.pod.model.model, config, seg)
        direct = [{"start": s.start, "end": s.end, "speaker": s.speaker, "final": True} for s in segments]
        assert direct and outcome.final == direct


def test_infer_uses_the_segmentation_pipeline(seg_pod: RunningPod, segmentation_model_file: Path) -> None:
    from voiceflow.config import EngineConfig
    from voiceflow.segmentation.model import SegmentationModel
    from voiceflow.selection import make_offline_diarizer

    audio = dev_audio(12.0)
    body = infer_wav(seg_pod, audio, "FLOAT")
    assert body["pipeline"] == "segmentation"
    config = EngineConfig(pipeline="segmentation")
    diarizer = make_offline_diarizer(config, seg_pod.pod.model.model, SegmentationModel.load(segmentation_model_file))
    direct = [{"start": s.start, "end": s.end, "speaker": s.speaker, "final": True} for s in diarizer.diarize(audio)]
    assert direct and body["segments"] == direct


def test_ready_and_metrics_name_the_pipeline(seg_pod: RunningPod) -> None:
    ready = httpx.get(seg_pod.http + "/ready").json()
    assert ready["status"] == "ready" and ready["pipeline"] == "segmentation"
    assert ready["segmentation_model_version"] == "seg-test" and ready["segmentation_model_sha256"]
    assert ready["model_version"] == seg_pod.pod.model.version  # the embedding model, as before
    text = httpx.get(seg_pod.http + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    info = [s for s in families["inference_pipeline_info"].samples if s.value == 1]
    assert len(info) == 1 and info[0].labels["pipeline"] == "segmentation"
    assert info[0].labels["segmentation_version"] == "seg-test"
    assert [s for s in families["inference_model_info"].samples if s.value == 1]  # unchanged contract


def test_overlapping_segments_with_the_same_start_are_both_delivered() -> None:
    a_open = Segment(1.0, 2.0, "SPEAKER_00", final=False)
    b_open = Segment(1.0, 1.5, "SPEAKER_01", final=False)
    a_longer = Segment(1.0, 2.5, "SPEAKER_00", final=False)
    b_closed = Segment(1.0, 2.2, "SPEAKER_01", final=True)
    c = Segment(0.2, 0.9, "SPEAKER_02", final=True)
    # the end of a stream is two engine reports (the resampler's tail, then the last partial step):
    # the second report's view of a (speaker, start) supersedes the first's
    assert _newest([[a_open, b_open], [c, a_longer, b_closed]]) == [c, a_longer, b_closed]


def test_bogus_pipeline_is_a_clear_startup_error() -> None:
    with pytest.raises(ValueError, match=r"VOICEFLOW_PIPELINE.*embedding, segmentation.*'bogus'"):
        Settings.from_env({"VOICEFLOW_PIPELINE": "bogus"})
    with pytest.raises(ValueError, match="pipeline"):
        Pod(Settings(pipeline="bogus"))
    assert Settings.from_env({}).pipeline == DEFAULT_PIPELINE
    env = {**os.environ, "VOICEFLOW_PIPELINE": "bogus", "VOICEFLOW_PORT": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "inference_pod"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "configuration error" in proc.stderr and "VOICEFLOW_PIPELINE" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_corrupt_segmentation_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "segmentation.onnx"
    bad.write_bytes(b"this is not an onnx model")
    with pytest.raises(ModelError, match="segmentation model"):
        LoadedModel.load(None, EngineConfig(pipeline="segmentation"), str(bad))
    with pytest.raises(ModelError, match="segmentation model"):
        LoadedModel.load(None, EngineConfig(pipeline="segmentation"), str(tmp_path / "missing.onnx"))
    # the embedding pipeline never looks at it
    assert LoadedModel.load(None, EngineConfig(pipeline="embedding"), str(bad)).segmentation is None


def test_a_corrupt_segmentation_model_push_is_refused_and_the_old_one_keeps_serving(
    tmp_path: Path, segmentation_model_file: Path
) -> None:
    mount = tmp_path / "seg"
    mount.mkdir()
    shutil.copy(segmentation_model_file, mount / "segmentation.onnx")
    shutil.copy(segmentation_model_file.with_suffix(".json"), mount / "segmentation.json")
    with running_pod(pipeline="segmentation", segmentation_model_path=str(mount)) as p:
        before = httpx.get(p.http + "/ready").json()
        assert before["segmentation_model_version"] == "seg-test"
        tmp = mount / ".segmentation.onnx.tmp"
        tmp.write_bytes(b"garbage, not onnx")
        os.replace(tmp, mount / "segmentation.onnx")
        deadline = time.monotonic() + 30
        while p.pod.metrics.reloads.labels(result="failed")._value.get() < 1:
            assert time.monotonic() < deadline, "bad segmentation model was never tried"
            time.sleep(0.1)
        ready = httpx.get(p.http + "/ready").json()
        assert ready["status"] == "ready" and ready["segmentation_model_sha256"] == before["segmentation_model_sha256"]
        assert "segmentation model" in ready["last_reload_error"]


def test_embedding_overlap_pod_streams_what_the_cli_streams() -> None:
    """VOICEFLOW_PIPELINE=embedding-overlap: streams run the embedding session with the bundled
    overlap detector on their rolling buffer; the pod's `final` is the CLI's for the same audio."""
    from inference_pod.client import stream_samples
    from voiceflow.segmentation.model import SegmentationModel, default_overlap_model_path
    from voiceflow.selection import stream_audio

    audio = dev_audio(15.0)
    with running_pod(pipeline="embedding-overlap", max_realtime_factor=50.0, realtime_burst_seconds=60.0) as pod:
        outcome = asyncio.run(stream_samples(audio, pod.ws, speed=0, chunk_seconds=0.13))
        assert outcome.final is not None and not outcome.errors, outcome.errors
        ready = httpx.get(f"{pod.http}/ready", timeout=10).json()
        assert ready["pipeline"] == "embedding-overlap"
        model = pod.pod.model.model
    detector = SegmentationModel.load(default_overlap_model_path())
    segments = stream_audio(audio, model, EngineConfig(pipeline="embedding-overlap"), detector)
    assert outcome.final == [{"start": s.start, "end": s.end, "speaker": s.speaker, "final": True} for s in segments]
