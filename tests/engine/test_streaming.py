"""The streaming session: any chunk size, stable labels, final segments, bounded state."""

from pathlib import Path

import numpy as np
import pytest

from voiceflow.audio import load_audio
from voiceflow.streaming import StreamingConfig, StreamingSession

SAMPLE = Path(__file__).resolve().parents[2] / "voiceflow" / "samples" / "conversation.wav"


@pytest.fixture(scope="module")
def sample_audio() -> np.ndarray:
    return load_audio(SAMPLE)[: 16000 * 20]


def run(model, audio: np.ndarray, chunk: int):  # type: ignore[no-untyped-def]
    session = StreamingSession.for_model(model)
    updates = []
    for i in range(0, len(audio), chunk):
        updates.append(session.feed(audio[i : i + chunk]))
    return session, updates, session.finish()


def test_result_does_not_depend_on_chunk_size(embedding_model, sample_audio) -> None:  # type: ignore[no-untyped-def]
    _, _, a = run(embedding_model, sample_audio, 8000)
    _, _, b = run(embedding_model, sample_audio, 1234)
    assert a == b
    assert len(a) > 3


def test_final_segments_never_change_later(embedding_model, sample_audio) -> None:  # type: ignore[no-untyped-def]
    session, updates, final = run(embedding_model, sample_audio, 4000)
    finalized = [seg for batch in updates for seg in batch if seg.final]
    assert finalized, "a 20 s stream must finalize some segments before it ends"
    final_set = {(round(s.start, 3), round(s.end, 3), s.speaker) for s in final}
    for seg in finalized:
        assert (round(seg.start, 3), round(seg.end, 3), seg.speaker) in final_set
    assert all(s.final for s in final)
    assert session.duration == pytest.approx(len(sample_audio) / 16000)


def test_silence_and_tiny_chunks(embedding_model) -> None:  # type: ignore[no-untyped-def]
    session = StreamingSession(embedding_model.embed)
    for _ in range(50):
        assert session.feed(np.zeros(17, dtype=np.float32)) == []
    assert session.feed(np.zeros(0, dtype=np.float32)) == []
    assert session.finish() == []


def test_hostile_samples_are_refused(embedding_model) -> None:  # type: ignore[no-untyped-def]
    session = StreamingSession(embedding_model.embed)
    with pytest.raises(ValueError, match="NaN"):
        session.feed(np.array([0.0, np.inf], dtype=np.float32))
    session.finish()
    with pytest.raises(RuntimeError, match="finished"):
        session.feed(np.zeros(10, dtype=np.float32))


def test_embedding_calls_go_through_the_injected_callable(embedding_model, sample_audio) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def counting_embed(windows: np.ndarray) -> np.ndarray:
        calls.append(windows.shape)
        return embedding_model.embed(windows)

    session = StreamingSession(counting_embed, StreamingConfig(step_seconds=0.48))
    session.feed(sample_audio[: 16000 * 5])
    assert calls and all(shape[0] == 1 and shape[1] <= 1.6 * 16000 + 512 for shape in calls)


def test_config_bounds() -> None:
    with pytest.raises(ValueError):
        StreamingConfig(window_seconds=0.1)
    with pytest.raises(ValueError):
        StreamingConfig(step_seconds=5.0, window_seconds=1.6)


def test_background_mean_is_loaded_validated_and_subtracted(embedding_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from voiceflow.embedding import EmbeddingModel, ModelError

    assert embedding_model.background_mean is not None and embedding_model.background_mean.shape == (256,)
    session = StreamingSession.for_model(embedding_model)
    assert session.background_mean is embedding_model.background_mean
    model_copy = tmp_path / "m.onnx"
    model_copy.write_bytes(embedding_model.path.read_bytes())
    assert EmbeddingModel.load(model_copy).background_mean is None
    np.save(tmp_path / "m.background.npy", np.zeros(3, dtype=np.float32))
    with pytest.raises(ModelError, match="256 finite floats"):
        EmbeddingModel.load(model_copy)
