"""Ground-truth bookkeeping of the segmentation chunk generator in pipelines.simulation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from vf_chunks import FRAME, REFERENCE, as_segments

from pipelines.simulation import (
    ChunkConfig,
    Empirical,
    Interval,
    LogNormal,
    TurnTakingConfig,
    frame_labels,
    max_simultaneous,
    render_chunk,
    sample_chunk_turns,
    turn_taking_statistics,
)
from voiceflow import SAMPLE_RATE


def test_two_overlapping_turns_overlap_on_exactly_their_shared_frames() -> None:
    a = Interval(0, 0, 32000)  # 0.0 - 2.0 s
    b = Interval(1, 25600, 48000)  # 1.6 - 3.0 s
    labels = frame_labels([a, b], 250, 3, FRAME)
    assert labels.shape == (250, 3)
    # Frame f is active when its centre (160 + 320 f) lies in [start, end).
    np.testing.assert_array_equal(np.flatnonzero(labels[:, 0]), np.arange(0, 100))
    np.testing.assert_array_equal(np.flatnonzero(labels[:, 1]), np.arange(80, 150))
    overlap = np.flatnonzero(labels.sum(axis=1) == 2)
    np.testing.assert_array_equal(overlap, np.arange(80, 100))  # 1.6 - 2.0 s = 20 frames
    assert labels[150:].sum() == 0  # silence after 3.0 s: nothing
    assert labels[:, 2].sum() == 0  # the third local speaker never talks


def test_frame_centre_rule_at_the_boundaries() -> None:
    # An interval ending on a frame's centre excludes it; one starting there includes it.
    labels = frame_labels([Interval(0, 0, 160), Interval(1, 160, 161)], 2, 2, FRAME)
    np.testing.assert_array_equal(labels, [[0, 1], [0, 0]])
    # Touching turns (one ends where the next starts) share no frame.
    touching = frame_labels([Interval(0, 0, 16000), Interval(1, 16000, 32000)], 100, 2, FRAME)
    assert touching.sum(axis=1).max() == 1


def brute_labels(intervals: list[Interval], config: ChunkConfig) -> np.ndarray:
    """Sample-level rasterisation, read at each frame's centre sample."""
    active = np.zeros((config.num_samples, config.max_speakers), dtype=np.uint8)
    for iv in intervals:
        active[iv.start : iv.end, iv.speaker] = 1
    centres = np.arange(config.num_frames) * config.frame_samples + config.frame_samples // 2
    return active[centres]


@pytest.mark.parametrize("seed", range(40))
def test_generated_chunks_are_exact_and_at_most_two_at_once(seed: int) -> None:
    config = ChunkConfig()
    turns = sample_chunk_turns(np.random.default_rng(seed), config)
    labels = frame_labels(turns, config.num_frames, config.max_speakers, config.frame_samples)
    assert labels.shape == (250, 3)
    np.testing.assert_array_equal(labels, brute_labels(turns, config))
    assert max_simultaneous(turns) <= 2
    assert labels.sum(axis=1).max(initial=0) <= 2
    for t in turns:
        assert 0 <= t.start < t.end <= config.num_samples
    # Local speakers are numbered by first appearance: 0, 1, 2 in order, no holes.
    firsts = [next(t.start for t in turns if t.speaker == s) for s in sorted({t.speaker for t in turns})]
    assert sorted({t.speaker for t in turns}) == list(range(len(firsts)))
    assert firsts == sorted(firsts)


def test_generation_is_deterministic_per_seed() -> None:
    a = sample_chunk_turns(np.random.default_rng(7))
    b = sample_chunk_turns(np.random.default_rng(7))
    assert a == b
    assert a != sample_chunk_turns(np.random.default_rng(8))


def test_no_overlap_when_overlap_probability_is_zero() -> None:
    config = ChunkConfig(turn_taking=TurnTakingConfig(p_overlap=0.0))
    for seed in range(30):
        labels = frame_labels(sample_chunk_turns(np.random.default_rng(seed), config), 250, 3, FRAME)
        assert labels.sum(axis=1).max(initial=0) <= 1


def test_always_overlapping_changes_still_never_exceed_two_speakers() -> None:
    tt = TurnTakingConfig(p_overlap=1.0, p_same_speaker=0.0, overlap=LogNormal(3.0, 0.5), segment=LogNormal(0.5, 0.5))
    config = ChunkConfig(turn_taking=tt)
    saw_overlap = False
    for seed in range(30):
        turns = sample_chunk_turns(np.random.default_rng(seed), config)
        assert max_simultaneous(turns) <= 2
        labels = frame_labels(turns, 250, 3, FRAME)
        saw_overlap |= bool((labels.sum(axis=1) == 2).any())
    assert saw_overlap


def test_gaps_are_drawn_from_the_given_distributions() -> None:
    # Fixed, distinct gap values: every gap in the generated layout must be one of them.
    tt = TurnTakingConfig(
        within_pause=Empirical((0.25,)),
        between_pause=Empirical((0.5,)),
        overlap=Empirical((0.1,)),
        segment=Empirical((1.0,)),
    )
    config = ChunkConfig(chunk_seconds=30.0, lead_in_seconds=0.0, turn_taking=tt)
    turns = sample_chunk_turns(np.random.default_rng(1), config)
    stats = turn_taking_statistics(as_segments(turns))
    assert set(np.round(stats.within_pauses, 6)) <= {0.25}
    assert set(np.round(stats.between_pauses, 6)) <= {0.5}
    assert set(np.round(stats.overlaps, 6)) <= {0.1}
    assert stats.between_pauses and stats.overlaps


def test_turn_taking_statistics_by_hand() -> None:
    stats = turn_taking_statistics(REFERENCE)
    assert stats.within_pauses == (0.5,)
    assert stats.overlaps == (0.5, 0.5)
    assert stats.between_pauses == (1.0,)
    assert stats.p_overlap == pytest.approx(2 / 3)


def test_render_labels_only_voiced_audio_and_leaves_silence_silent() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE * 4) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    gapped = tone.copy()
    gapped[SAMPLE_RATE : SAMPLE_RATE * 3] = 0.0  # 2 s of digital silence inside the utterance
    turns = [Interval(0, 0, 16000), Interval(1, 32000, 80000)]
    audio, voiced = render_chunk(turns, [tone, np.tile(gapped, 2)], rng, level_spread_db=0.0)
    assert audio.shape == (80000,)
    assert np.all(audio[16000:32000] == 0)  # the pause between the turns is silent
    labels = frame_labels(voiced, 250, 2, FRAME)
    assert labels[:50, 0].all() and not labels[50:, 0].any()
    assert not labels[:100, 1].any()
    # Speaker 1's stretch of `gapped` contains silence: those frames are not labelled speech.
    silent = np.abs(audio[32000:80000]).reshape(-1, FRAME).max(axis=1) == 0
    assert silent.any()
    assert not labels[100:][silent, 1].any()
    assert max_simultaneous(voiced) <= 1


def test_existing_chunk_defaults() -> None:
    config = ChunkConfig()
    assert (config.num_samples, config.num_frames) == (80000, 250)
    assert replace(config, chunk_seconds=2.0).num_frames == 100
