"""`streaming.embedding_hops`: speakers decided every N speech hops from one embedding, the frames
of the hops between waiting for it. Same promises as every session (any chunking, live finals are
the result, bounded audio), with 1/N of the embeddings; invalid values are refused by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from voiceflow.audio import load_audio
from voiceflow.clustering.online import OnlineClusteringConfig
from voiceflow.config import ConfigError, EngineConfig, load_engine_config
from voiceflow.embedding import EmbeddingModel
from voiceflow.segments import Segment
from voiceflow.selection import make_streaming_session
from voiceflow.streaming import StreamingConfig, StreamingSession

RECORDING = Path(__file__).resolve().parents[1] / "data" / "dev00.wav"


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    return load_audio(RECORDING)[: 16000 * 20 + 333]


def session_with(model: EmbeddingModel, hops: int, calls: list[int], pipeline: str = "embedding") -> StreamingSession:
    base = EngineConfig(pipeline=pipeline)
    streaming = dataclasses.replace(
        base.streaming, embedding_hops=hops, clustering=OnlineClusteringConfig(confirm_windows=2)
    )
    session = make_streaming_session(dataclasses.replace(base, streaming=streaming), model)
    assert isinstance(session, StreamingSession)
    embed = session.speaker_blocks[0].embed  # type: ignore[attr-defined]

    def counting(windows: np.ndarray) -> np.ndarray:
        calls.append(windows.shape[0])
        return embed(windows)

    session.speaker_blocks[0].embed = counting  # type: ignore[attr-defined]
    return session


def feed_all(session: StreamingSession, audio: np.ndarray, sizes: list[int]) -> list[list[Segment]]:
    reports, i, k = [], 0, 0
    while i < audio.size:
        n = sizes[k % len(sizes)]
        reports.append(session.feed(audio[i : i + n]))
        i, k = i + n, k + 1
    reports.append(session.flush())
    return reports


@pytest.mark.parametrize("pipeline", ["embedding", "embedding-overlap"])
def test_any_chunking_same_result_and_live_finals_are_the_result(
    embedding_model: EmbeddingModel, audio: np.ndarray, pipeline: str
) -> None:
    results = []
    for sizes in ([8000], [1600], [37, 12000, 5001]):
        session = session_with(embedding_model, 2, [], pipeline)
        reports = feed_all(session, audio, sizes)
        final = session.finish()
        sent = {(s.start, s.end, s.speaker) for report in reports for s in report if s.final}
        assert sent == {(s.start, s.end, s.speaker) for s in final}
        assert any(not s.final for report in reports for s in report), "drafts before finals"
        results.append(final)
    assert results[0] == results[1] == results[2]
    assert len({s.speaker for s in results[0]}) >= 2


def test_half_the_embeddings_and_the_audio_held_stays_bounded(
    embedding_model: EmbeddingModel, audio: np.ndarray
) -> None:
    every: list[int] = []
    second: list[int] = []
    one = session_with(embedding_model, 1, every)
    two = session_with(embedding_model, 2, second)
    for i in range(0, audio.size, 8000):
        one.feed(audio[i : i + 8000])
        two.feed(audio[i : i + 8000])
        # the window behind the newest decided frame, plus the hop waiting for its speaker and a step
        assert two.audio.size <= two._context + two.config.step_frames * 512 + 8000 + 512
    one.finish(), two.finish()
    hops = -(-round(audio.size / 512) // one.config.step_frames)
    # one embedding per joined pair of hops at most (a pair embeds when either hop has speech)
    assert 0 < sum(second) <= -(-hops // 2) < sum(every) <= hops


@pytest.mark.parametrize("value", [0, 9, -1])
def test_out_of_range_is_refused(value: int, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="embedding_hops"):
        StreamingConfig(embedding_hops=value)
    path = tmp_path / "engine.yaml"
    path.write_text(f"streaming:\n  embedding_hops: {value}\n")
    with pytest.raises(ConfigError, match="embedding_hops"):
        load_engine_config(path)


def test_set_from_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "engine.yaml"
    path.write_text("streaming:\n  embedding_hops: 2\n  clustering: {confirm_windows: 2}\n")
    config = load_engine_config(path)
    assert config.streaming.embedding_hops == 2 and config.streaming.clustering.confirm_windows == 2
    path.write_text("streaming:\n  embedding_hops: two\n")
    with pytest.raises(ConfigError, match="embedding_hops"):
        load_engine_config(path)
