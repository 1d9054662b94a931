"""The protocol's promise, at the engine: every segment is reported once more when it becomes final,
so the segments a session reports live with final=True (feed, then flush) are exactly its finish()
result, whatever the chunking, on real speech, for every pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voiceflow.audio import load_audio
from voiceflow.config import EngineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.live import LiveLedger
from voiceflow.pauses import PauseRules
from voiceflow.segments import Segment
from voiceflow.selection import StreamSession, make_streaming_session

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = {
    "dev00": ROOT / "tests" / "data" / "dev00.wav",
    "sample": ROOT / "voiceflow" / "samples" / "conversation.wav",
}


@pytest.fixture(scope="module")
def recordings() -> dict[str, np.ndarray]:
    return {name: load_audio(path) for name, path in RECORDINGS.items()}


def fixed(seconds: float) -> Iterator[int]:
    while True:
        yield int(seconds * 16000)


def random_sizes(seed: int) -> Iterator[int]:
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.integers(1, 40000))  # up to 2.5 s, odd sizes, single samples included


def stream(session: StreamSession, audio: np.ndarray, sizes: Iterator[int]) -> list[list[Segment]]:
    """Every report the session makes: one per feed, then the flush's."""
    reports, i = [], 0
    while i < audio.size:
        n = next(sizes)
        reports.append(session.feed(audio[i : i + n]))
        i += n
    reports.append(session.flush())
    return reports


def check_promise(reports: list[list[Segment]], final: list[Segment]) -> None:
    as_tuple = [(s.start, s.end, s.speaker) for s in final]
    assert final and all(s.final for s in final)
    sent_final = [(s.start, s.end, s.speaker) for report in reports for s in report if s.final]
    # The live finals are the result: none missing, none extra, none sent final twice.
    assert sorted(sent_final) == sorted(as_tuple)
    # Every draft becomes one of them under its identity (speaker, start): no draft is left open.
    keys = {(s.speaker, s.start) for s in final}
    drafts = {(s.speaker, s.start) for report in reports for s in report if not s.final}
    assert drafts <= keys, sorted(drafts - keys)
    assert drafts, "real speech streams must send drafts before finals"
    # Nothing is reported after it is final.
    closed: set[tuple[str, float]] = set()
    for report in reports:
        for s in report:
            assert (s.speaker, s.start) not in closed, s
        closed |= {(s.speaker, s.start) for s in report if s.final}


CHUNKINGS = {
    "0.1s": lambda: fixed(0.1),
    "0.5s": lambda: fixed(0.5),
    "1.3s": lambda: fixed(1.3),
    "random": lambda: random_sizes(7),
}


@pytest.mark.parametrize("recording", sorted(RECORDINGS))
@pytest.mark.parametrize("chunking", sorted(CHUNKINGS))
def test_live_finals_are_the_result_embedding(
    embedding_model: EmbeddingModel, recordings: dict[str, np.ndarray], recording: str, chunking: str
) -> None:
    session = make_streaming_session(EngineConfig(pipeline="embedding"), embedding_model)
    reports = stream(session, recordings[recording], CHUNKINGS[chunking]())
    check_promise(reports, session.finish())


@pytest.mark.parametrize("pipeline", ["embedding-overlap", "segmentation"])
@pytest.mark.parametrize("chunking", ["0.1s", "random"])
def test_live_finals_are_the_result_other_pipelines(
    embedding_model: EmbeddingModel, recordings: dict[str, np.ndarray], pipeline: str, chunking: str
) -> None:
    session = make_streaming_session(EngineConfig(pipeline=pipeline), embedding_model)
    reports = stream(session, recordings["dev00"], CHUNKINGS[chunking]())
    check_promise(reports, session.finish())


def test_merging_gap_holds_finals_back(embedding_model: EmbeddingModel, recordings: dict[str, np.ndarray]) -> None:
    """With a merging gap, a segment is final only once no later turn can join it."""
    from dataclasses import replace

    base = EngineConfig(pipeline="embedding")
    config = replace(base, streaming=replace(base.streaming, pauses=PauseRules(own_pause_seconds=0.5)))
    session = make_streaming_session(config, embedding_model)
    reports = stream(session, recordings["sample"], fixed(0.5))
    check_promise(reports, session.finish())


@pytest.mark.parametrize("recording", sorted(RECORDINGS))
@pytest.mark.parametrize("chunking", ["0.1s", "random"])
def test_placing_speaker_changes_in_pauses_keeps_the_promise(
    embedding_model: EmbeddingModel, recordings: dict[str, np.ndarray], recording: str, chunking: str
) -> None:
    """A change moved into a pause relabels only draft frames: the live finals are still the result,
    and the result gives pauses back as silence (it has at least as much silence as without)."""
    from dataclasses import replace

    config = EngineConfig(pipeline="embedding")
    assert config.streaming.pauses == PauseRules(speaker_change_reach_seconds=0.5, own_pause_seconds=0.6)
    session = make_streaming_session(config, embedding_model)
    reports = stream(session, recordings[recording], CHUNKINGS[chunking]())
    placed = session.finish()
    check_promise(reports, placed)
    off = replace(config, streaming=replace(config.streaming, pauses=PauseRules(0.0, 0.6)))
    plain = make_streaming_session(off, embedding_model)
    plain.feed(recordings[recording])
    without = plain.finish()
    assert sum(s.end - s.start for s in placed) <= sum(s.end - s.start for s in without) + 1e-6


def test_flush_after_finish_and_twice(embedding_model: EmbeddingModel, recordings: dict[str, np.ndarray]) -> None:
    session = make_streaming_session(EngineConfig(), embedding_model)
    reports = stream(session, recordings["sample"][: 16000 * 12], fixed(0.5))
    final = session.finish()
    assert session.flush() == []  # the closing report was already taken
    check_promise(reports, final)


def test_ledger_reports_only_changes() -> None:
    ledger = LiveLedger()
    draft = Segment(1.0, 2.0, "SPEAKER_00", final=False)
    assert ledger.report([draft]) == [draft]
    assert ledger.report([draft]) == []  # unchanged: not sent again
    longer = Segment(1.0, 2.5, "SPEAKER_00", final=False)
    other = Segment(1.0, 1.5, "SPEAKER_01", final=False)  # same start, other speaker: its own segment
    assert ledger.report([longer, other]) == [other, longer]  # in time order
    done = Segment(np.float64(1.0), np.float64(2.5), "SPEAKER_00", final=np.True_)  # type: ignore[arg-type]
    (reported,) = ledger.report([done, other])
    assert type(reported.start) is float and reported.final is True
