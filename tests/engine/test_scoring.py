import pytest

from voiceflow.scoring import score_der
from voiceflow.segments import Segment


def test_perfect_hypothesis_with_renamed_speakers_scores_zero() -> None:
    ref = {"u": [Segment(0, 5, "alice"), Segment(5, 10, "bob")]}
    hyp = {"u": [Segment(0, 5, "S1"), Segment(5, 10, "S0")]}
    assert score_der(ref, hyp, {"u": [(0, 10)]}).der == pytest.approx(0.0)


def test_components_add_up() -> None:
    ref = {"u": [Segment(0, 4, "a"), Segment(4, 8, "b")]}
    hyp = {"u": [Segment(0, 4, "x"), Segment(4, 6, "x"), Segment(8, 9, "y")]}
    report = score_der(ref, hyp, {"u": [(0, 10)]})
    rates = report.component_rates()
    assert rates["missed"] == pytest.approx(2 / 8)
    assert rates["confusion"] == pytest.approx(2 / 8)
    assert rates["false_alarm"] == pytest.approx(1 / 8)
    assert report.der == pytest.approx(5 / 8)


def test_collar_forgives_boundaries_and_overlap_is_scored() -> None:
    ref = {"u": [Segment(0, 5, "a"), Segment(4, 8, "b")]}
    hyp = {"u": [Segment(0, 5.1, "a"), Segment(5.1, 8, "b")]}
    strict = score_der(ref, hyp, {"u": [(0, 8)]}, collar=0.0)
    assert strict.missed == pytest.approx(1.0, abs=0.11)  # the overlapped second of b is missed
    lenient = score_der(ref, hyp, {"u": [(0, 8)]}, collar=0.25)
    assert lenient.der < strict.der


def test_missing_hypothesis_is_all_missed() -> None:
    report = score_der({"u": [Segment(0, 2, "a")]}, {}, {"u": [(0, 2)]})
    assert report.der == pytest.approx(1.0)
