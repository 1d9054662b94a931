"""Meeting-like training chunks (issue 24): a room per speaker, backchannels, turn-taking measured
on RTTMs, more speakers per chunk. Every option defaults to today's chunks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve
from vf_chunks import FRAME, REFERENCE, as_segments

from pipelines.segmentation.augment import (
    AugmentAssets,
    SegAugmentConfig,
    at_distance,
    no_assets,
    speaker_rooms,
)
from pipelines.segmentation.config import SegDataConfig, SegTrainConfig, config_from_dict
from pipelines.segmentation.data import make_chunk, synthetic_pools
from pipelines.segmentation.train import training_turn_taking
from pipelines.segmentation.turn_taking import pooled_statistics, rttm_turn_taking, turn_taking_from
from pipelines.simulation import (
    ChunkConfig,
    Empirical,
    Interval,
    TurnTakingConfig,
    frame_labels,
    max_simultaneous,
    render_chunk,
    sample_chunk_turns,
    turn_taking_statistics,
)
from voiceflow import SAMPLE_RATE
from voiceflow.segments import Segment

# ---------------------------------------------------------------- defaults: today's chunks


def test_every_new_option_defaults_to_todays_chunks() -> None:
    assert TurnTakingConfig().p_backchannel == 0.0
    assert ChunkConfig().speaker_count_weights == ()
    assert SegAugmentConfig().p_speaker_rooms == 0.0
    assert SegDataConfig().turn_taking == "simulated"
    config = SegTrainConfig()
    assert config.training_chunk_config(training_turn_taking(config.data)) == config.chunk_config()


# ---------------------------------------------------------------- backchannels


def inside_of(turn: Interval, host: Interval) -> bool:
    return host.speaker != turn.speaker and host.start <= turn.start and turn.end <= host.end


def backchannel_layout(seed: int) -> tuple[list[Interval], ChunkConfig]:
    tt = TurnTakingConfig(
        segment=Empirical((2.0,)),
        within_pause=Empirical((0.3,)),
        between_pause=Empirical((0.4,)),
        p_overlap=0.0,
        p_backchannel=1.0,
        backchannel=Empirical((0.5,)),
    )
    config = ChunkConfig(chunk_seconds=30.0, lead_in_seconds=0.0, turn_taking=tt, speaker_count_weights=(0, 0, 1))
    return sample_chunk_turns(np.random.default_rng(seed), config), config


@pytest.mark.parametrize("seed", range(5))
def test_backchannels_lie_wholly_inside_another_speakers_turn(seed: int) -> None:
    turns, config = backchannel_layout(seed)
    short = [t for t in turns if t.end - t.start == SAMPLE_RATE // 2 and t.end < config.num_samples]
    assert short, "p_backchannel 1 must place backchannels"
    for bc in short:
        assert sum(inside_of(bc, t) for t in turns) == 1
    assert max_simultaneous(turns) == 2
    # Measured back: every backchannel found as one, no overlap left (p_overlap is 0); a turn the
    # chunk's end cut short is left out (it may be a cut backchannel).
    whole = [t for t in turns if t.end < config.num_samples]
    stats = turn_taking_statistics(as_segments(whole), backchannel_seconds=1.0)
    assert set(np.round(stats.backchannels, 6)) == {0.5}
    assert stats.overlaps == ()
    # Exact frames: a backchannel's frames are exactly the overlapped ones (frame-centre rule).
    labels = frame_labels(turns, config.num_frames, config.max_speakers, FRAME)
    centres = np.arange(config.num_frames) * FRAME + FRAME // 2
    inside = np.zeros(config.num_frames, dtype=bool)
    for bc in (t for t in turns if any(inside_of(t, h) for h in turns)):
        inside |= (centres >= bc.start) & (centres < bc.end)
    np.testing.assert_array_equal(labels.sum(axis=1) == 2, inside)


def test_backchannel_layouts_are_deterministic_per_seed() -> None:
    assert backchannel_layout(3)[0] == backchannel_layout(3)[0]
    assert backchannel_layout(3)[0] != backchannel_layout(4)[0]


# ---------------------------------------------------------------- speakers per chunk


def test_speaker_count_weights_choose_how_many_speakers_a_chunk_draws() -> None:
    one = ChunkConfig(speaker_count_weights=(1.0, 0.0, 0.0))
    three = ChunkConfig(speaker_count_weights=(0.0, 0.0, 1.0), lead_in_seconds=0.0)
    rng = np.random.default_rng(0)
    assert all(len({t.speaker for t in sample_chunk_turns(rng, one)}) <= 1 for _ in range(50))
    counts = [len({t.speaker for t in sample_chunk_turns(rng, three)}) for _ in range(200)]
    uniform = [len({t.speaker for t in sample_chunk_turns(rng, ChunkConfig())}) for _ in range(200)]
    assert np.mean(counts) > np.mean(uniform)
    assert max(counts) == 3


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, -1.0, 1.0), (0.0, 0.0, 0.0)])
def test_bad_speaker_count_weights_are_refused(weights: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="speaker_count_weights"):
        ChunkConfig(speaker_count_weights=weights)


# ---------------------------------------------------------------- turn-taking measured on RTTMs


def test_backchannels_by_hand() -> None:
    stats = turn_taking_statistics(REFERENCE, backchannel_seconds=1.0)
    assert stats.backchannels == (0.5,)
    assert stats.overlaps == (0.5,)
    assert stats.within_pauses == (0.5,)
    assert stats.between_pauses == (1.0,)
    assert stats.segments == (2.0, 1.5, 1.5, 1.0)
    assert stats.p_backchannel == pytest.approx(1 / 4)
    assert stats.p_same_speaker == pytest.approx(1 / 3)
    assert stats.p_overlap == pytest.approx(1 / 2)
    # Without the threshold: today's figures (C is an overlap capped at its length).
    assert turn_taking_statistics(REFERENCE).overlaps == (0.5, 0.5)


def test_pooled_statistics_never_measure_a_gap_across_recordings() -> None:
    later = [Segment(s.start + 100, s.end + 100, s.speaker) for s in REFERENCE]
    one = turn_taking_statistics(REFERENCE, 1.0)
    pooled = pooled_statistics([REFERENCE, later])
    assert pooled.between_pauses == one.between_pauses * 2  # not a 93 s pause between them
    assert pooled.backchannels == (0.5, 0.5)


def test_measured_turn_taking_drives_the_simulator(tmp_path: Path) -> None:
    rttm = tmp_path / "train.rttm"
    rttm.write_text(
        "".join(
            f"SPEAKER rec 1 {s.start:.3f} {s.end - s.start:.3f} <NA> <NA> {s.speaker} <NA> <NA>\n" for s in REFERENCE
        )
    )
    tt, stats = rttm_turn_taking(rttm)
    assert tt == turn_taking_from(stats)
    assert tt.overlap == Empirical((0.5,)) and tt.backchannel == Empirical((0.5,))
    assert (tt.p_overlap, tt.p_backchannel) == (stats.p_overlap, stats.p_backchannel)
    config = ChunkConfig(chunk_seconds=60.0, lead_in_seconds=0.0, turn_taking=tt)
    turns = sample_chunk_turns(np.random.default_rng(2), config)
    whole = [t for t in turns if t.end < config.num_samples]  # the chunk's end cuts the last turns
    drawn = turn_taking_statistics(as_segments(whole), backchannel_seconds=1.0)
    assert set(np.round(drawn.within_pauses, 6)) <= {0.5}
    assert set(np.round(drawn.between_pauses, 6)) <= {1.0}
    # An overlap is the measured one, or shorter where a backchannel still runs at its start
    # (the next voice waits for it: never three at once).
    assert 0.5 in set(np.round(drawn.overlaps, 6)) and max(drawn.overlaps) <= 0.5 + 1e-6
    assert drawn.between_pauses and drawn.backchannels
    assert max_simultaneous(turns) <= 2


def test_unmeasured_distributions_keep_the_stand_ins() -> None:
    base = TurnTakingConfig()
    tt = turn_taking_from(turn_taking_statistics([Segment(0, 1, "A"), Segment(2, 3, "B")], 1.0))
    assert tt.overlap == base.overlap and tt.within_pause == base.within_pause
    assert tt.between_pause == Empirical((1.0,)) and tt.p_overlap == 0.0


def test_the_trainer_reads_the_ami_training_rttm(tmp_path: Path) -> None:
    ami = tmp_path / "ami-excerpts"
    ami.mkdir()
    (ami / "train.rttm").write_text(
        "SPEAKER trn00 1 0.0 2.0 <NA> <NA> A <NA> <NA>\nSPEAKER trn00 1 1.5 2.0 <NA> <NA> B <NA> <NA>\n"
    )
    tt = training_turn_taking(SegDataConfig(turn_taking="ami", data_root=str(tmp_path)))
    assert tt.overlap == Empirical((0.5,)) and tt.p_overlap == 1.0
    with pytest.raises(ValueError, match="turn_taking"):
        SegDataConfig(turn_taking="callhome")
    config = config_from_dict({"data": {"turn_taking": "ami", "speaker_count_weights": [1, 2, 3]}})
    assert config.data.speaker_count_weights == (1.0, 2.0, 3.0)
    assert config.training_chunk_config(tt).speaker_count_weights == (1.0, 2.0, 3.0)
    assert config.chunk_config().turn_taking == TurnTakingConfig()  # validation keeps the stand-ins


# ---------------------------------------------------------------- a room per speaker


def test_tracks_are_the_chunk_split_by_speaker() -> None:
    pools = synthetic_pools(3, 0)
    turns = [Interval(0, 0, 40000), Interval(1, 30000, 80000), Interval(2, 60000, 70000)]
    mix, voiced = render_chunk(turns, pools.train, np.random.default_rng(7))
    tracks, voiced_tracks = render_chunk(turns, pools.train, np.random.default_rng(7), per_speaker=True)
    assert voiced_tracks == voiced
    np.testing.assert_allclose(tracks.sum(axis=0), mix, atol=1e-6)
    assert not tracks[0, 40000:].any() and not tracks[1, :30000].any()


def test_distance_scales_the_direct_path_only() -> None:
    rir = np.array(
        [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        + [0.0] * 20
        + [0.2, -0.1],
        dtype=np.float32,
    )
    near, far = at_distance(rir, 1.0), at_distance(rir, 2.0)
    assert near[0] == 1.0 and far[0] == 0.5  # direct path: 1 at 1 m, 1/d further away
    np.testing.assert_allclose(near[-2:], far[-2:])  # the diffuse tail does not depend on distance
    np.testing.assert_allclose(near[-2:], [0.4, -0.2])


def test_each_speaker_has_its_own_room() -> None:
    rng = np.random.default_rng(0)
    voice = rng.standard_normal(16000).astype(np.float32)
    tracks = np.stack([voice, voice])  # the same voice twice, overlapping everywhere
    rirs = [rng.standard_normal(800).astype(np.float32) for _ in range(4)]
    assets = AugmentAssets([], rirs)
    config = SegAugmentConfig(p_speaker_rooms=1.0, p_synthetic_room=0.5, distance_m=(0.5, 3.0))
    out = speaker_rooms(tracks, np.random.default_rng(3), config, assets)
    assert out.shape == tracks.shape and np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])  # two rooms, two distances
    np.testing.assert_array_equal(out, speaker_rooms(tracks, np.random.default_rng(3), config, assets))
    # Exact reference where they overlap: the mix is each speaker alone in its own room, summed.
    alone = [
        speaker_rooms(tracks * (np.arange(2) == s)[:, None], np.random.default_rng(3), config, assets)[s]
        for s in range(2)
    ]
    np.testing.assert_allclose(out.sum(axis=0), alone[0] + alone[1], atol=1e-5)


def test_a_measured_room_at_one_metre_is_a_plain_convolution() -> None:
    rir = np.zeros(100, dtype=np.float32)
    rir[0], rir[60] = 2.0, 1.0
    track = np.random.default_rng(1).standard_normal((1, 4000)).astype(np.float32)
    config = SegAugmentConfig(p_synthetic_room=0.0, distance_m=(1.0, 1.0))
    out = speaker_rooms(track, np.random.default_rng(0), config, AugmentAssets([], [rir]))
    np.testing.assert_allclose(out[0], fftconvolve(track[0], rir / 2.0)[:4000], atol=1e-5)


def test_roomed_chunks_keep_the_dry_labels() -> None:
    pools = synthetic_pools(6, 0)
    config = ChunkConfig()
    augment = SegAugmentConfig(p_rir=0.0, p_noise=0.0, p_speaker_rooms=1.0, p_synthetic_room=1.0)
    for seed in range(4):
        audio, labels = make_chunk(pools.train, np.random.default_rng(seed), config, (20.0, 30.0), augment, no_assets())
        assert audio.shape == (config.num_samples,) and np.isfinite(audio).all()
        # The reference is the dry speakers' voiced activity: the same draws without the rooms.
        rng = np.random.default_rng(seed)
        turns = sample_chunk_turns(rng, config)
        used = max((t.speaker for t in turns), default=-1) + 1
        voices = [pools.train[int(i)] for i in rng.choice(len(pools.train), size=used, replace=False)] if used else []
        _, voiced = render_chunk(turns, voices, rng, config, per_speaker=True)
        np.testing.assert_array_equal(labels, frame_labels(voiced, config.num_frames, config.max_speakers, FRAME))
        again, _ = make_chunk(pools.train, np.random.default_rng(seed), config, (20.0, 30.0), augment, no_assets())
        np.testing.assert_array_equal(audio, again)


def test_rooms_from_measured_rirs_need_the_files() -> None:
    assert not replace(SegAugmentConfig(p_rir=0, p_noise=0), p_speaker_rooms=1.0, p_synthetic_room=1.0).needs_assets
    assert replace(SegAugmentConfig(p_rir=0, p_noise=0), p_speaker_rooms=1.0, p_synthetic_room=0.5).needs_assets


# ---------------------------------------------------------------- the research presets


RESEARCH = Path(__file__).parents[2] / "research/presets/segmentation"


def test_the_meeting_presets_load_and_differ_only_in_turn_taking() -> None:
    from pipelines.segmentation.config import load_config

    full = load_config(RESEARCH / "meeting-finetune.yaml")
    acoustics = load_config(RESEARCH / "meeting-acoustics-finetune.yaml")
    assert (full.data.turn_taking, acoustics.data.turn_taking) == ("ami", "simulated")
    assert full.augment.p_speaker_rooms > 0 and full.data.speaker_count_weights == (0.15, 0.35, 0.5)
    assert replace(full, name=acoustics.name, data=replace(full.data, turn_taking="simulated")) == acoustics
    assert not any(name.startswith("dev") for name in full.data.ami_files)
