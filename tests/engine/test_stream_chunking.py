"""Every live session steps every STREAM_FEED_SAMPLES of its own stream, so any chunking of the same
audio gives the same result: the same reports at every step, the same flush, the same finish()
(final flags included), for every registered pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voiceflow import STREAM_FEED_SAMPLES
from voiceflow.audio import load_audio
from voiceflow.blocks.audio import RollingAudio
from voiceflow.blocks.base import settled
from voiceflow.blocks.stepper import Stepper
from voiceflow.config import EngineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.live import latest
from voiceflow.registry import PIPELINES
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segments import Segment
from voiceflow.selection import load_segmentation_model, make_streaming_session, stream_audio

RECORDING = Path(__file__).resolve().parents[1] / "data" / "dev00.wav"
# 20 s and a few samples: three speakers talk, and the stream ends in a partial step. (12 s were
# enough on a Xeon; on an AMD EPYC (same code, other CPU kernels) the segmentation pipeline's session
# heard one speaker there, and a one-speaker run would not test the labels' stability.)
SAMPLES = 16000 * 20 + 77


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return load_audio(RECORDING)[:SAMPLES]


@pytest.fixture(scope="module")
def networks() -> dict[str, SegmentationModel | None]:
    return {pipeline: load_segmentation_model(EngineConfig(pipeline=pipeline)) for pipeline in PIPELINES}


def fixed(size: int) -> Iterator[int]:
    while True:
        yield size


def random_sizes(seed: int) -> Iterator[int]:
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.integers(1, 40000))  # single samples to 2.5 s, mostly not whole steps


CHUNKINGS = {
    "1": lambda: fixed(1),
    "100": lambda: fixed(100),
    "7999": lambda: fixed(7999),
    "8001": lambda: fixed(8001),
    "12345": lambda: fixed(12345),
    "whole": lambda: fixed(SAMPLES),
    "random": lambda: random_sizes(23),
}


class Run:
    """One stream: the reports' merged state after every step the feeds completed, the flush, finish()."""

    def __init__(self, session, audio: np.ndarray, sizes: Iterator[int]) -> None:  # type: ignore[no-untyped-def]
        self.at_step: dict[int, list[Segment]] = {}
        reports: list[list[Segment]] = []
        fed = 0
        while fed < audio.size:
            n = next(sizes)
            report = session.feed(audio[fed : fed + n])
            steps_before, fed = fed // STREAM_FEED_SAMPLES, min(fed + n, audio.size)
            if fed // STREAM_FEED_SAMPLES == steps_before:
                assert report == [], "a feed that completes no step reports nothing"
                continue
            reports.append(report)
            self.at_step[fed // STREAM_FEED_SAMPLES] = latest(reports)
        assert session.duration == pytest.approx(audio.size / 16000)
        self.flush = session.flush()
        self.finish = session.finish()


def run(pipeline: str, model: EmbeddingModel, network: SegmentationModel | None, audio, sizes) -> Run:  # type: ignore[no-untyped-def]
    return Run(make_streaming_session(EngineConfig(pipeline=pipeline), model, segmentation_model=network), audio, sizes)


@pytest.fixture(scope="module")
def reference(embedding_model: EmbeddingModel, networks, audio) -> dict[str, Run]:  # type: ignore[no-untyped-def]
    """Every pipeline fed as a client does (STREAM_FEED_SAMPLES blocks): what stream_audio gives."""
    return {p: run(p, embedding_model, networks[p], audio, fixed(STREAM_FEED_SAMPLES)) for p in PIPELINES}


def test_the_reference_feeding_is_stream_audio(embedding_model, networks, audio, reference) -> None:  # type: ignore[no-untyped-def]
    for pipeline in PIPELINES:
        ref = reference[pipeline]
        assert ref.finish == stream_audio(audio, embedding_model, EngineConfig(pipeline=pipeline), networks[pipeline])
        assert len({s.speaker for s in ref.finish}) >= 2 and all(s.final for s in ref.finish)
        assert any(not s.final for state in ref.at_step.values() for s in state), "drafts before finals"
        assert sorted(ref.at_step) == list(range(1, SAMPLES // STREAM_FEED_SAMPLES + 1))


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("chunking", sorted(CHUNKINGS))
def test_any_chunking_gives_the_same_result(embedding_model, networks, audio, reference, pipeline, chunking) -> None:  # type: ignore[no-untyped-def]
    ref = reference[pipeline]
    got = run(pipeline, embedding_model, networks[pipeline], audio, CHUNKINGS[chunking]())
    assert got.finish == ref.finish  # segments and their final flags, exactly
    # After every step a feed completed, the client holds what the reference client holds then (a
    # feed that completes several steps reports them as one update) ...
    for step, state in got.at_step.items():
        assert state == ref.at_step[step], (pipeline, chunking, step)
    # ... and after the flush too: every segment of the result, final.
    last = max(got.at_step)
    assert got.flush == ref.flush
    assert latest([got.at_step[last], got.flush]) == latest([ref.at_step[last], ref.flush]) == ref.finish


def test_stepper_cuts_whole_steps_from_any_chunking() -> None:
    stepper = Stepper(4)
    pieces = [np.arange(n, dtype=np.float32) for n in (1, 2, 6, 0, 3, 1)]
    steps = [step for piece in pieces for step in stepper.push(piece)]
    assert [s.tolist() for s in steps] == [[0, 0, 1, 0], [1, 2, 3, 4], [5, 0, 1, 2]]
    assert stepper.held_samples == 1 and stepper.drain().tolist() == [0] and stepper.drain().size == 0
    with pytest.raises(ValueError):
        Stepper(0)


def test_rolling_audio_keeps_what_it_is_told_and_refuses_what_it_dropped() -> None:
    audio = RollingAudio()
    audio.append(np.arange(10, dtype=np.float32))
    audio.forget_before(4)
    audio.forget_before(2)  # already gone: nothing happens
    assert (audio.start, audio.end, audio.size) == (4, 10, 6)
    assert audio.window(5, 8).tolist() == [5, 6, 7]
    with pytest.raises(ValueError, match="dropped"):
        audio.window(3, 8)


def test_one_rule_for_final() -> None:
    assert settled(1.0, 2.0) and not settled(2.0, 2.0)  # a segment reaching the edge is a draft
    assert not settled(1.6, 2.0, gap=0.5)  # a later turn could still join it across the gap
    assert settled(1.4, 2.0, gap=0.5)
