"""The offline and streaming segmentation pipelines end to end.

Two kinds of segmentation "network": an oracle built from a simulated conversation's exact
reference (so the pipelines' own logic — local embeddings, constrained clustering,
reconstruction — is scored apart from how well a network is trained), and a real exported ONNX
network (untrained: for the runtime contract, chunk-size independence and finality).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from pipelines.evaluation.oracle import OracleSegmentation
from pipelines.simulation import SimulationConfig, build_dev_conversations
from voiceflow.audio import load_audio
from voiceflow.config import EngineConfig, SegmentationSettings
from voiceflow.scoring import score_der
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segmentation.offline import SegmentationDiarizer
from voiceflow.segmentation.streaming import SegmentationStreamingConfig, SegmentationStreamingSession
from voiceflow.segments import Segment
from voiceflow.selection import make_offline_diarizer, make_streaming_session

SAMPLE = Path(__file__).resolve().parents[2] / "voiceflow" / "samples" / "conversation.wav"


@pytest.fixture(scope="module")
def overlapped_conversation(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    from tests.conftest import require_shared

    shared = require_shared()
    config = SimulationConfig(
        min_speakers=2, max_speakers=3, duration_seconds=25.0, overlap_probability=0.8, max_overlap_seconds=2.5
    )
    return build_dev_conversations(shared / "librispeech-train-clean-100", count=1, seed=4242, config=config)[0]


def _stream(
    session: SegmentationStreamingSession, audio: np.ndarray, block: int
) -> tuple[list[Segment], list[Segment]]:
    updates: list[Segment] = []
    for i in range(0, len(audio), block):
        updates.extend(session.feed(audio[i : i + block]))
    final = session.finish()
    return updates, final


@pytest.mark.shared
def test_oracle_segmentation_recovers_overlap_offline_and_streaming(embedding_model, overlapped_conversation) -> None:  # type: ignore[no-untyped-def]
    conv = overlapped_conversation
    oracle = OracleSegmentation(conv.audio, conv.reference)
    ref = {conv.uri: conv.reference}
    offline = SegmentationDiarizer(embedding_model=embedding_model, segmentation_model=oracle).diarize(conv.audio)  # type: ignore[arg-type]
    report = score_der(ref, {conv.uri: offline})
    baseline = score_der(ref, {conv.uri: make_offline_diarizer(EngineConfig(), embedding_model).diarize(conv.audio)})
    assert report.overlap_speech > 2.0, "the simulated conversation must hold overlapped speech"
    assert report.der < 0.10, f"oracle segmentation offline DER {report.der:.3f}"
    assert report.missed_overlap < 0.5 * baseline.missed_overlap
    assert any(a.end > b.start and a.speaker != b.speaker for a, b in itertools.pairwise(offline)), "no overlap emitted"

    with_overlap = make_offline_diarizer(EngineConfig(pipeline="embedding-overlap"), embedding_model, oracle)  # type: ignore[arg-type]
    fallback = score_der(ref, {conv.uri: with_overlap.diarize(conv.audio)})
    assert fallback.missed_overlap < 0.5 * baseline.missed_overlap, "the overlap detector adds no second speaker"
    assert fallback.der < baseline.der

    # The same fallback on a live stream: the detector runs on the session's rolling buffer.
    from voiceflow.selection import stream_audio

    config = EngineConfig(pipeline="embedding-overlap")
    plain = score_der(ref, {conv.uri: stream_audio(conv.audio, embedding_model, EngineConfig())})
    live = score_der(ref, {conv.uri: stream_audio(conv.audio, embedding_model, config, oracle)})  # type: ignore[arg-type]
    assert live.missed_overlap < 0.8 * plain.missed_overlap, "the streaming detector adds no second speaker"

    session = SegmentationStreamingSession.for_model(embedding_model, oracle)  # type: ignore[arg-type]
    _, streamed = _stream(session, conv.audio, 8000)
    streaming = score_der(ref, {conv.uri: streamed})
    assert streaming.der < 0.25, f"oracle segmentation streaming DER {streaming.der:.3f}"
    assert streaming.missed_overlap < 0.5 * baseline.missed_overlap


@pytest.fixture(scope="module")
def tiny_segmentation(tmp_path_factory: pytest.TempPathFactory) -> SegmentationModel:
    torch = pytest.importorskip("torch")
    from pipelines.segmentation.export import export_segmentation_model
    from pipelines.segmentation.model import SegmentationModel as Network
    from pipelines.segmentation.model import SegmentationSpec

    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("seg") / "segmentation.onnx"
    network = Network(SegmentationSpec(channels=16, lstm_hidden=16, lstm_layers=1, head_hidden=16))
    with torch.no_grad():  # untrained, but talkative: speakers 1 and 2 and their overlap win often
        network.head[-1].bias.copy_(torch.tensor([0.0, 1.0, 0.9, -2.0, 0.9, -2.0, -2.0]))
        network.head[-1].weight.mul_(8.0)
    export_segmentation_model(network, path)
    return SegmentationModel.load(path)


@pytest.fixture(scope="module")
def sample_audio() -> np.ndarray:
    return load_audio(SAMPLE)[: 16000 * 14]


def test_runtime_decodes_the_powerset(tiny_segmentation: SegmentationModel) -> None:
    out = tiny_segmentation.activity(np.zeros((2, 80000), dtype=np.float32))
    assert out.hard.shape == (2, 250, 3) and out.soft.shape == (2, 250, 3)
    assert (out.hard.sum(axis=-1) <= 2).all()
    assert ((out.soft >= 0) & (out.soft <= 1 + 1e-5)).all()
    with pytest.raises(ValueError):
        tiny_segmentation.activity(np.zeros((1, 100), dtype=np.float32))


def test_streaming_result_does_not_depend_on_block_size(embedding_model, tiny_segmentation, sample_audio) -> None:  # type: ignore[no-untyped-def]
    config = SegmentationStreamingConfig(latency_seconds=2.0)
    a = _stream(
        SegmentationStreamingSession.for_model(embedding_model, tiny_segmentation, config=config), sample_audio, 8000
    )
    b = _stream(
        SegmentationStreamingSession.for_model(embedding_model, tiny_segmentation, config=config), sample_audio, 1234
    )
    assert a[1] == b[1]
    assert a[1], "the stream produced no segments at all"


def test_streaming_updates_end_in_the_final_segments(embedding_model, tiny_segmentation, sample_audio) -> None:  # type: ignore[no-untyped-def]
    session = SegmentationStreamingSession.for_model(
        embedding_model, tiny_segmentation, config=SegmentationStreamingConfig(latency_seconds=1.0)
    )
    updates, final = _stream(session, sample_audio, 4000)
    closed = {(s.speaker, s.start, s.end) for s in final}
    assert all(s.final for s in final)
    announced = [s for s in updates if s.final]
    assert announced, "a 14 s stream must finalize segments before it ends"
    # A segment announced final never changes later ...
    assert all((s.speaker, s.start, s.end) in closed for s in announced)
    # ... and an open one only grows: same speaker and start, a later end.
    ends = {(s.speaker, s.start): s.end for s in final}
    for seg in updates:
        if not seg.final:
            assert (seg.speaker, seg.start) in ends and ends[(seg.speaker, seg.start)] >= seg.end
    with pytest.raises(RuntimeError):
        session.feed(np.zeros(100, dtype=np.float32))


def test_streaming_rejects_bad_audio_and_bounds_its_buffer(embedding_model, tiny_segmentation) -> None:  # type: ignore[no-untyped-def]
    session = SegmentationStreamingSession.for_model(embedding_model, tiny_segmentation)
    with pytest.raises(ValueError):
        session.feed(np.array([0.0, np.nan], dtype=np.float32))
    noise = np.random.default_rng(0).standard_normal(16000 * 12).astype(np.float32) * 0.01
    for i in range(0, len(noise), 8000):
        session.feed(noise[i : i + 8000])
    assert session.audio.size <= tiny_segmentation.chunk_samples
    assert len(session.aggregation.chunks) <= 12
    assert session.duration == pytest.approx(12.0)


def test_selection_builds_the_configured_pipeline(embedding_model, tiny_segmentation, sample_audio) -> None:  # type: ignore[no-untyped-def]
    config = EngineConfig(pipeline="segmentation", segmentation=SegmentationSettings())
    diarizer = make_offline_diarizer(config, embedding_model, tiny_segmentation)
    assert isinstance(diarizer, SegmentationDiarizer)
    assert isinstance(
        make_streaming_session(config, embedding_model, None, tiny_segmentation), SegmentationStreamingSession
    )
    segments = diarizer.diarize(sample_audio[: 16000 * 6], num_speakers=2)
    assert len({s.speaker for s in segments}) <= 2
    with pytest.raises(ValueError):
        EngineConfig(pipeline="bogus")
    assert diarizer.diarize(np.zeros(100, dtype=np.float32)) == []


def test_streaming_agrees_with_offline_on_a_short_meeting() -> None:
    """The bundled segmentation network with GE2E on AMI dev00 (30 s): both pipelines hear the same
    speech; streaming may name it less well (it decides from 5 s of context, labels never revised).
    Measured when this test was written: FA 0.0 %, miss 7.6 %, confusion 25.4 % of the offline
    speech. GE2E, not the default model: the segmentation pipelines were tuned and gated with it,
    and with the promoted student their streaming AMI dev DER is worse (docs/pipelines.md)."""
    from voiceflow.embedding import DEFAULT_MODEL, EmbeddingModel
    from voiceflow.scoring import score_der
    from voiceflow.selection import stream_audio

    embedding_model = EmbeddingModel.load(DEFAULT_MODEL)
    audio = load_audio(Path(__file__).resolve().parents[1] / "data" / "dev00.wav")
    config = EngineConfig(pipeline="segmentation")
    offline = make_offline_diarizer(config, embedding_model).diarize(audio)
    streamed = stream_audio(audio, embedding_model, config)
    rates = score_der({"dev00": offline}, {"dev00": streamed}).component_rates()
    assert rates["false_alarm"] + rates["missed"] < 0.10, rates
    assert rates["confusion"] < 0.35, rates


def test_offline_chunks_are_produced_batch_by_batch(tiny_segmentation: SegmentationModel) -> None:
    from voiceflow.segmentation.offline import chunk_starts, chunk_windows, sliding_activity

    audio = np.random.default_rng(1).standard_normal(16000 * 9).astype(np.float32) * 0.05
    batches = list(chunk_windows(audio, tiny_segmentation, 0.5, batch=3))
    assert all(len(starts) <= 3 and chunks.shape == (len(starts), 80000) for starts, chunks in batches)
    all_starts = np.concatenate([b[0] for b in batches])
    np.testing.assert_array_equal(all_starts, chunk_starts(len(audio) // 320 * 320, 80000, 8000))
    starts, hard = sliding_activity(audio, tiny_segmentation, 0.5, batch=3)  # type: ignore[misc]
    np.testing.assert_array_equal(starts, all_starts)
    assert hard.shape == (len(all_starts), 250, 3)
    assert sliding_activity(audio[:100], tiny_segmentation, 0.5) is None


def test_streaming_overlap_detector_is_block_size_independent(embedding_model, sample_audio) -> None:  # type: ignore[no-untyped-def]
    from voiceflow.streaming import StreamingSession

    detector = SegmentationModel.load(Path(__file__).resolve().parents[2] / "voiceflow" / "models" / "overlap.onnx")
    finals = []
    for block in (8000, 1234):
        session = StreamingSession.for_model(embedding_model, overlap_model=detector)
        for i in range(0, len(sample_audio), block):
            session.feed(sample_audio[i : i + block])
        finals.append(session.finish())
        assert session.audio.size <= detector.chunk_samples + 8000 + 512
    assert finals[0] == finals[1] and finals[0]
