"""Overlap scored on its own (issue 24): detection precision/recall and DER parts by where they fall."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.evaluation.overlap import (
    OverlapCounts,
    count_overlap,
    detection_curve,
    overlap_counts,
    rates,
    reference_overlap,
)
from voiceflow.segments import Segment

# two people, overlapping on [4, 5)
REFERENCE = [Segment(0.0, 5.0, "a"), Segment(4.0, 9.0, "b")]


def test_a_perfect_hypothesis_finds_all_overlap_and_makes_no_error() -> None:
    counts = overlap_counts(REFERENCE, [Segment(0.0, 5.0, "x"), Segment(4.0, 9.0, "y")])
    assert counts.speech == pytest.approx(10.0, abs=0.02)
    assert counts.ref_overlap == pytest.approx(1.0, abs=0.02) and counts.hit_overlap == pytest.approx(1.0, abs=0.02)
    assert counts.missed_overlap == counts.missed_single == 0.0
    assert counts.false_alarm_silence == counts.false_alarm_speech == 0.0
    r = rates(counts)
    assert r["overlap_precision"] == pytest.approx(1.0) and r["overlap_recall"] == pytest.approx(1.0)


def test_one_speaker_at_a_time_misses_the_overlap_and_detects_none() -> None:
    counts = overlap_counts(REFERENCE, [Segment(0.0, 4.5, "x"), Segment(4.5, 9.0, "y")])
    assert counts.missed_overlap == pytest.approx(1.0, abs=0.02), "one of the two speakers, for 1 s"
    assert counts.missed_single == 0.0 and counts.hyp_overlap == 0.0
    r = rates(counts)
    assert r["overlap_recall"] == 0.0
    assert r["overlap_precision"] == 1.0, "no detection was wrong"
    assert r["missed_overlap"] == pytest.approx(0.1, abs=0.003)


def test_a_wrong_second_speaker_is_false_alarm_inside_speech_and_silence_is_its_own_part() -> None:
    hyp = [Segment(0.0, 5.0, "x"), Segment(4.0, 9.0, "y"), Segment(1.0, 2.0, "y"), Segment(9.0, 10.0, "x")]
    counts = overlap_counts(REFERENCE, hyp)
    assert counts.false_alarm_speech == pytest.approx(1.0, abs=0.02)
    assert counts.false_alarm_silence == pytest.approx(1.0, abs=0.02)
    assert counts.hyp_overlap == pytest.approx(2.0, abs=0.02) and counts.hit_overlap == pytest.approx(1.0, abs=0.02)
    assert rates(counts)["overlap_precision"] == pytest.approx(0.5, abs=0.01)


def test_the_parts_add_up_to_pyannotes_missed_and_false_alarm() -> None:
    from pipelines.evaluation.suite.runner import score_recording

    rng = np.random.default_rng(4)

    def draw(names: str) -> list[Segment]:
        out = []
        for name in names:
            t = 0.0
            while t < 30:
                start = t + rng.uniform(0.0, 3.0)
                out.append(Segment(round(start, 2), round(start + rng.uniform(0.3, 4.0), 2), name))
                t = out[-1].end
        return out

    ref, hyp, uem = draw("abc"), draw("xyz"), [(1.0, 25.0)]
    counts, der = overlap_counts(ref, hyp, uem), score_recording(ref, hyp, uem)["der"]
    assert counts.speech == pytest.approx(der["total"], abs=0.05)
    assert counts.missed_overlap + counts.missed_single == pytest.approx(der["missed"], abs=0.05)
    assert counts.false_alarm_silence + counts.false_alarm_speech == pytest.approx(der["false_alarm"], abs=0.05)


def test_the_uem_limits_what_is_counted() -> None:
    counts = overlap_counts(REFERENCE, [], uem=[(0.0, 4.0)])
    assert counts.speech == pytest.approx(4.0, abs=0.02) and counts.ref_overlap == 0.0


def test_counts_pool_by_summing() -> None:
    a = count_overlap(np.array([2, 1, 0]), np.array([1, 1, 1]), 0.5)
    b = count_overlap(np.array([2, 2]), np.array([2, 0]), 0.5)
    total = a + b
    assert total.ref_overlap == pytest.approx(1.5) and total.hit_overlap == pytest.approx(0.5)
    assert total.missed_overlap == pytest.approx(0.5 + 1.0)
    assert OverlapCounts.from_dict(total.to_dict()) == total
    with pytest.raises(ValueError):
        count_overlap(np.array([1, 2]), np.array([1]), 0.5)


def test_the_detection_curve_trades_recall_for_precision() -> None:
    truth, _ = reference_overlap(REFERENCE, 100, 0.1)
    assert truth.sum() == 10
    scores = np.where(truth, 0.7, 0.0) + np.linspace(0, 0.5, 100)
    points = detection_curve(truth, scores, [0.0, 0.6, 0.9, 1.5])
    assert points[0] == (10.0, 100.0, 10.0), "threshold 0 detects everything"
    detected = [p[1] for p in points]
    assert detected == sorted(detected, reverse=True)
    assert points[-1][:2] == (0.0, 0.0)
    with pytest.raises(ValueError):
        detection_curve(truth, scores[:5], [0.5])
