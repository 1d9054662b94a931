"""The segmentation pipelines' pure blocks: aggregation, constrained clustering, local embeddings, scoring."""

from __future__ import annotations

import numpy as np
import pytest

from voiceflow.clustering.constrained import (
    UNASSIGNED,
    ConstrainedOnlineClusterer,
    ConstrainedOnlineConfig,
    cluster_local_speakers,
    match_to_centroids,
)
from voiceflow.powerset import decode, multilabel_to_powerset, powerset_mapping, soft_activity
from voiceflow.scoring import overlap_miss, score_der
from voiceflow.segmentation.aggregation import (
    chunk_taper,
    keep_top_speakers,
    overlap_add,
    smooth_tracks,
    speaker_count,
    tracks_to_segments,
)
from voiceflow.segmentation.local_embeddings import (
    LocalEmbeddingConfig,
    embed_local_speakers,
    embedding_windows,
    speaker_audio,
)
from voiceflow.segmentation.offline import chunk_starts, global_activity, reconstruct
from voiceflow.segments import Segment

# -- powerset decoding (the engine side) ---------------------------------------------------------


def test_soft_activity_is_the_marginal_of_the_classes() -> None:
    probs = np.array([[0.1, 0.2, 0.0, 0.0, 0.7, 0.0, 0.0]], dtype=np.float32)  # {}, {1}, ..., {1,2}
    soft = soft_activity(np.log(probs + 1e-12))
    np.testing.assert_allclose(soft[0], [0.9, 0.7, 0.0], atol=1e-5)
    np.testing.assert_array_equal(decode(np.log(probs + 1e-12))[0], [1, 1, 0])


def test_powerset_round_trip_on_every_representable_frame() -> None:
    mapping = powerset_mapping()
    np.testing.assert_array_equal(multilabel_to_powerset(mapping), np.arange(len(mapping)))


# -- aggregation ---------------------------------------------------------------------------------


def test_overlap_add_is_a_taper_weighted_average() -> None:
    a = np.ones((4, 1))
    b = np.zeros((4, 1))
    out = overlap_add([a, b], [0, 2], 6)
    w = chunk_taper(4)
    assert out[0, 0] == 1.0 and out[1, 0] == 1.0
    assert out[2, 0] == pytest.approx(w[2] / (w[2] + w[0]))
    assert out[5, 0] == 0.0
    assert (out[4:, 0] == 0).all()


def test_overlap_add_accepts_chunks_starting_before_frame_zero_and_uncovered_frames() -> None:
    out = overlap_add([np.arange(6, dtype=float)[:, None]], [-3], 5)
    np.testing.assert_array_equal(out[:3, 0], [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(out[3:, 0], [0.0, 0.0])


def test_speaker_count_rounds_the_weighted_vote() -> None:
    hard = [np.array([[1, 1, 0]] * 4), np.array([[1, 0, 0]] * 4)]
    count = speaker_count(hard, [0, 0], 4)
    assert set(count.tolist()) <= {1, 2}
    assert speaker_count([np.array([[1, 1, 0]] * 4)], [0], 6).tolist() == [2, 2, 2, 2, 0, 0]


def test_keep_top_speakers_takes_count_best_and_never_a_zero_score() -> None:
    scores = np.array([[0.9, 0.5, 0.0], [0.2, 0.8, 0.6], [0.7, 0.0, 0.0]])
    count = np.array([1, 2, 2])
    out = keep_top_speakers(scores, count)
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 1, 1], [1, 0, 0]])


def test_tracks_to_segments_can_overlap_and_smoothing_closes_gaps_and_drops_blips() -> None:
    active = np.zeros((10, 2), dtype=bool)
    active[0:6, 0] = True
    active[4:9, 1] = True
    segs = tracks_to_segments(active, 0.02)
    assert [(s.speaker, round(s.start, 2), round(s.end, 2)) for s in segs] == [
        ("SPEAKER_00", 0.0, 0.12),
        ("SPEAKER_01", 0.08, 0.18),
    ]
    gappy = np.array([[1], [1], [0], [1], [1], [0], [0], [0], [1], [0]], dtype=bool)
    smooth = smooth_tracks(gappy, min_on_frames=1, min_off_frames=1)
    np.testing.assert_array_equal(smooth[:, 0], [1, 1, 1, 1, 1, 0, 0, 0, 0, 0])


def test_chunk_starts_cover_the_whole_recording() -> None:
    starts = chunk_starts(23, 10, 4)
    assert starts.tolist() == [0, 4, 8, 12, 13]
    assert chunk_starts(7, 10, 4).tolist() == [0]


def test_reconstruct_maps_local_speakers_to_global_and_keeps_overlap() -> None:
    # Two chunks of 4 frames, the second starting at frame 2; local order differs between them.
    hard = np.zeros((2, 4, 3), dtype=np.uint8)
    hard[0, :, 0] = 1  # global 0 throughout chunk 0
    hard[0, 2:, 1] = 1  # global 1 joins (overlap) at frames 2-3
    hard[1, :2, 0] = 1  # chunk 1: local 0 is global 1 ...
    hard[1, :2, 1] = 1  # ... local 1 is global 0, both active at its frames 0-1 = global frames 2-3
    labels = np.array([[0, 1, UNASSIGNED], [1, 0, UNASSIGNED]])
    tracks = reconstruct(hard, labels, np.array([0, 2]), 6)
    np.testing.assert_array_equal(tracks[:, 0], [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(tracks[:, 1], [0, 0, 1, 1, 0, 0])
    assert global_activity(hard[1], labels[1], 2)[:, 1].tolist() == [1, 1, 0, 0]


# -- constrained clustering ----------------------------------------------------------------------


def test_hungarian_matching_never_reuses_a_centroid_when_it_can_avoid_it() -> None:
    sims = np.array([[0.9, 0.8], [0.95, 0.1], [0.0, 0.0]])
    out = match_to_centroids(sims, np.array([True, True, False]))
    assert out.tolist() == [1, 0, UNASSIGNED]
    # More local speakers than centroids: the extra one rejoins its closest voice.
    assert match_to_centroids(np.array([[0.9], [0.8]]), np.array([True, True])).tolist() == [0, 0]


def _voices(rng: np.random.Generator, count: int, dim: int = 32) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((dim, count)))[0].T  # orthonormal speaker directions


def test_cluster_local_speakers_keeps_a_chunks_speakers_apart() -> None:
    rng = np.random.default_rng(0)
    voices = _voices(rng, 2)
    chunks, speakers = 12, 3
    emb = np.zeros((chunks, speakers, 32))
    valid = np.zeros((chunks, speakers), dtype=bool)
    truth = np.full((chunks, speakers), -1)
    for c in range(chunks):
        order = rng.permutation(2)
        for s in range(2):
            emb[c, s] = voices[order[s]] + 0.05 * rng.standard_normal(32)
            valid[c, s] = True
            truth[c, s] = order[s]
    labels = cluster_local_speakers(emb, valid)
    assert (labels[:, 2] == UNASSIGNED).all()
    assert (labels[:, 0] != labels[:, 1]).all()
    # One consistent mapping from the truth to the labels.
    mapping = {t: lab for t, lab in zip(truth[valid], labels[valid], strict=True)}
    assert len(set(mapping.values())) == 2
    assert all(mapping[t] == lab for t, lab in zip(truth[valid], labels[valid], strict=True))
    assert (cluster_local_speakers(emb, np.zeros_like(valid)) == UNASSIGNED).all()


def test_online_clusterer_founds_joins_and_never_relabels() -> None:
    rng = np.random.default_rng(1)
    a, b = _voices(rng, 2)
    clusterer = ConstrainedOnlineClusterer(
        ConstrainedOnlineConfig(join_threshold=0.5, new_speaker_seconds=1.0, confirm_chunks=1)
    )
    first = clusterer.assign(np.stack([a, b, np.zeros(32)]), np.array([True, True, False]), np.array([2.0, 1.5, 0]))
    assert sorted(first[:2].tolist()) == [0, 1] and first[2] == UNASSIGNED
    again = clusterer.assign(np.stack([b, a, a]), np.array([True, True, False]), np.array([2.0, 2.0, 0]))
    assert again[0] == first[1] and again[1] == first[0]
    c = _voices(np.random.default_rng(7), 3)[2]
    short = clusterer.assign(np.stack([c]), np.array([True]), np.array([0.3]))
    assert short[0] in (0, 1), "too little speech to found a speaker: the closest voice keeps it"
    assert clusterer.num_speakers == 2
    founded = clusterer.assign(np.stack([c]), np.array([True]), np.array([1.5]))
    assert founded[0] == 2 and clusterer.num_speakers == 3


def test_online_clusterer_respects_max_speakers() -> None:
    clusterer = ConstrainedOnlineClusterer(ConstrainedOnlineConfig(max_speakers=1, confirm_chunks=1))
    voices = _voices(np.random.default_rng(2), 2)
    clusterer.assign(voices[:1], np.array([True]), np.array([2.0]))
    assert clusterer.assign(voices[1:], np.array([True]), np.array([2.0]))[0] == 0
    with pytest.raises(ValueError):
        ConstrainedOnlineConfig(join_threshold=1.5)


# -- local embeddings ----------------------------------------------------------------------------


def test_speaker_audio_prefers_frames_where_the_speaker_is_alone() -> None:
    chunk = np.arange(10 * 4, dtype=np.float32)  # 10 frames of 4 samples
    hard = np.zeros((10, 3), dtype=np.uint8)
    hard[0:6, 0] = 1
    hard[4:10, 1] = 1
    alone = speaker_audio(chunk, hard, 0, frame_samples=4, min_samples=8)
    np.testing.assert_array_equal(alone, chunk[:16])
    # Speaker 2 never talks; speaker 1 alone for 4 frames, enough.
    assert speaker_audio(chunk, hard, 2, 4, 8).size == 0
    assert speaker_audio(chunk, hard, 1, 4, 8).size == 16
    # Not enough alone-time: the overlapped frames serve.
    assert speaker_audio(chunk, hard, 0, 4, min_samples=20).size == 24


def test_embedding_windows_tile_short_audio_and_spread_long_audio() -> None:
    short = embedding_windows(np.arange(3, dtype=np.float32), 7, 3)
    np.testing.assert_array_equal(short, [[0, 1, 2, 0, 1, 2, 0]])
    long = embedding_windows(np.arange(20, dtype=np.float32), 8, 3)
    assert long.shape == (3, 8) and long[0, 0] == 0 and long[-1, -1] == 19


def test_embed_local_speakers_batches_every_chunk_and_marks_slots() -> None:
    calls: list[int] = []

    def embed(windows: np.ndarray) -> np.ndarray:
        calls.append(len(windows))
        return np.stack([np.ones(4) * w.mean() for w in windows]).astype(np.float32)

    config = LocalEmbeddingConfig(window_seconds=0.5, min_speech_seconds=0.1, max_windows=2, batch_size=3)
    chunk = np.ones(16000, dtype=np.float32)
    hard = np.zeros((50, 3), dtype=np.uint8)
    hard[:30, 0] = 1
    hard[30:, 1] = 1
    emb, valid = embed_local_speakers([chunk, chunk], [hard, hard], embed, 320, config)
    assert valid.tolist() == [[True, True, False], [True, True, False]]
    assert emb.shape == (2, 3, 4)
    np.testing.assert_allclose(np.linalg.norm(emb[valid], axis=1), 1.0, atol=1e-6)
    assert (emb[~valid] == 0).all()
    assert max(calls) <= 3 and sum(calls) == 2 * (2 + 1)  # 0.6 s -> 2 windows, 0.4 s -> 1
    empty, none = embed_local_speakers([chunk], [np.zeros((50, 3), np.uint8)], embed, 320, config)
    assert not none.any() and empty.shape[0] == 1


# -- missed overlap ------------------------------------------------------------------------------


def test_overlap_miss_counts_only_speakers_lost_in_overlap() -> None:
    ref = [Segment(0.0, 2.0, "A"), Segment(1.0, 3.0, "B")]  # overlap 1..2 s
    one_at_a_time = [Segment(0.0, 1.5, "x"), Segment(1.5, 3.0, "y")]
    missed, overlap = overlap_miss(ref, one_at_a_time)
    assert overlap == pytest.approx(2.0, abs=0.02)
    assert missed == pytest.approx(1.0, abs=0.02)
    assert overlap_miss(ref, ref)[0] == 0.0
    assert overlap_miss(ref, [], uem=[(0.0, 1.5)]) == pytest.approx((1.0, 1.0), abs=0.02)
    report = score_der({"f": ref}, {"f": one_at_a_time})
    assert report.missed_overlap == pytest.approx(1.0, abs=0.02)
    assert report.missed_overlap <= report.missed + 0.02
    assert report.component_rates()["missed_overlap"] == pytest.approx(1.0 / report.total, abs=0.01)


# -- the overlap-detector fallback ---------------------------------------------------------------


def test_second_speaker_is_the_vote_runner_up_else_the_nearest_other_voice() -> None:
    from voiceflow.segmentation.overlap import NO_SPEAKER, second_speakers

    labels = np.array([0, 0, 0, 1, 1, -1, 1, 1])
    votes = np.zeros((8, 2))
    votes[:4, 0] = 1.0
    votes[2:5, 1] = 0.5
    overlap = np.array([0, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    out = second_speakers(labels, votes, overlap, max_reach=2)
    assert out[2] == 1, "runner-up of the votes"
    assert out[1] == 1, "no runner-up vote: the nearest other voice (frame 3, within reach)"
    assert out[5] == NO_SPEAKER, "no speech, no second speaker"
    assert out[7] == NO_SPEAKER, "nobody else within reach"
    assert (out[~overlap] == NO_SPEAKER).all()


def test_a_new_voice_must_be_heard_in_consecutive_chunks_when_asked() -> None:
    a, b, c = _voices(np.random.default_rng(5), 3)
    clusterer = ConstrainedOnlineClusterer(ConstrainedOnlineConfig(join_threshold=0.5, confirm_chunks=2))
    yes, long = np.array([True]), np.array([2.0])
    assert clusterer.assign(a[None], yes, long)[0] == UNASSIGNED, "first hearing: a candidate only"
    assert clusterer.assign(a[None], yes, long)[0] == 0, "heard twice in a row: a speaker"
    assert clusterer.assign(b[None], yes, long)[0] == UNASSIGNED
    assert clusterer.assign(c[None], yes, long)[0] == UNASSIGNED, "b was not heard again: its count restarts"
    assert clusterer.assign(c[None], yes, long)[0] == 1
    assert clusterer.num_speakers == 2


def test_speech_gate_drops_what_vad_rejects_and_fills_what_nobody_holds() -> None:
    from voiceflow.segmentation.offline import gate_with_speech, resample_mask

    active = np.zeros((8, 2), dtype=bool)
    active[0:3, 0] = True
    active[6:8, 1] = True
    speech = np.array([0, 1, 1, 1, 1, 0, 1, 1], dtype=bool)
    gated = gate_with_speech(active, speech)
    assert not gated[0].any(), "no speech, no speaker"
    # Nobody held frames 3-4: the nearest held frame (2) lends them speaker 0.
    np.testing.assert_array_equal(gated[3], [True, False])
    np.testing.assert_array_equal(gated[4], [True, False])
    assert not gated[5].any()
    np.testing.assert_array_equal(gated[6:, 1], [True, True])
    # 32 ms VAD frames read at the centres of 20 ms frames.
    mask = np.array([1, 0, 1], dtype=bool)
    np.testing.assert_array_equal(resample_mask(mask, 0.032, 5, 0.02), [1, 1, 0, 1, 1])
    assert not resample_mask(np.zeros(0, bool), 0.032, 3, 0.02).any()


def test_the_nearest_rule_ignores_the_votes() -> None:
    from voiceflow.segmentation.overlap import second_speakers

    labels = np.array([0, 0, 0, 2, 2, 0])
    votes = np.zeros((6, 3))
    votes[:, 1] = 0.5  # speaker 1 covers every frame but is never anyone's primary
    overlap = np.array([0, 0, 1, 0, 0, 0], dtype=bool)
    assert second_speakers(labels, votes, overlap, max_reach=2)[2] == 1, "votes: the runner-up"
    assert second_speakers(labels, votes, overlap, max_reach=2, rule="nearest")[2] == 2, "nearest voice in time"
    with pytest.raises(ValueError):
        second_speakers(labels, votes, overlap, max_reach=2, rule="loudest")


def test_overlap_is_the_count_vote_or_the_probability_above_a_threshold() -> None:
    from voiceflow.segmentation.overlap import OverlapConfig, overlap_decision

    count, probability = np.array([1, 2, 2, 0]), np.array([0.6, 0.3, 0.9, 0.1])
    assert overlap_decision(count, probability, None).tolist() == [False, True, True, False]
    assert overlap_decision(count, probability, 0.5).tolist() == [True, False, True, False]
    for bad in ({"threshold": 1.0}, {"threshold": 0.0}, {"second_speaker": "loudest"}):
        with pytest.raises(ValueError):
            OverlapConfig(**bad)  # type: ignore[arg-type]


def test_vad_plus_confident_speech_keeps_the_networks_sure_speech_only() -> None:
    from voiceflow.segmentation.offline import LocalSpeakers, SegmentationPipelineConfig, speech_frames

    vad = np.array([1, 1, 0, 0, 0], dtype=bool)
    network = np.array([0.2, 0.99, 0.95, 0.5, 0.0])
    local = LocalSpeakers(
        np.zeros(1, int), np.zeros((1, 5, 3)), np.zeros((1, 3, 2)), np.zeros((1, 3), bool), 5, 0.02, vad, network
    )
    assert speech_frames(local, SegmentationPipelineConfig()) is None, "the network alone decides"
    assert speech_frames(local, SegmentationPipelineConfig(speech="vad")).tolist() == vad.tolist()  # type: ignore[union-attr]
    both = speech_frames(local, SegmentationPipelineConfig(speech="vad+confident", confident_speech=0.9))
    assert both is not None and both.tolist() == [True, True, True, False, False]
    network_speech = np.array([0, 1, 1, 1, 1], dtype=bool)
    confirmed = speech_frames(
        local, SegmentationPipelineConfig(speech="confirmed", confident_speech=0.9), network_speech
    )
    assert confirmed is not None and confirmed.tolist() == [False, True, True, False, False], (
        "the network's speech, kept where the VAD agrees or the network is sure; nothing added"
    )
    with pytest.raises(ValueError):
        SegmentationPipelineConfig(speech="both")
    with pytest.raises(ValueError):
        SegmentationPipelineConfig(confident_speech=1.5)


def test_bundled_networks_give_counts_and_overlap_probabilities_from_one_run() -> None:
    from voiceflow.segmentation.model import DEFAULT_OVERLAP_MODEL, DEFAULT_SEGMENTATION_MODEL, SegmentationModel

    chunks = (np.random.default_rng(2).standard_normal((2, 48000)) * 0.1).astype(np.float32)
    for path in (DEFAULT_SEGMENTATION_MODEL, DEFAULT_OVERLAP_MODEL):
        if not path.is_file():
            continue
        model = SegmentationModel.load(path)
        count, probability = model.count_and_overlap(chunks)
        np.testing.assert_array_equal(count, model.count(chunks))
        assert probability.shape == count.shape and ((probability >= 0) & (probability <= 1 + 1e-5)).all()
        if model.task == "powerset":
            activity = model.activity(chunks)
            np.testing.assert_allclose(activity.overlap, probability, atol=1e-6)
            assert activity.speech is not None and (activity.speech >= activity.soft.max(axis=-1) - 1e-5).all()
            assert (activity.overlap <= activity.speech + 1e-6).all()
