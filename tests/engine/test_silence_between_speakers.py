"""Pauses as references count them: the pause the VAD's rules bridge is given back as silence where
the speaker changes (and only there), and a speaker's own short pause is speech."""

import numpy as np
import pytest

from voiceflow.pauses import PauseRules
from voiceflow.pipeline import DiarizationConfig, Diarizer
from voiceflow.segments import Segment, bridge_own_pauses, silence_between_speakers
from voiceflow.streaming import StreamingConfig
from voiceflow.vad import FRAME_SECONDS, Speech, VADConfig, probabilities_to_mask, speech_frames

A, B, C, NONE = 0, 1, 2, -1


def frames(*runs: tuple[int, int]) -> np.ndarray:
    """(label, length) runs -> frame labels."""
    return np.concatenate([np.full(length, label) for label, length in runs])


def heard_except(n: int, *pauses: tuple[int, int]) -> np.ndarray:
    heard = np.ones(n, dtype=bool)
    for start, end in pauses:
        heard[start:end] = False
    return heard


def test_a_change_inside_a_heard_pause_makes_the_pause_silence() -> None:
    labels = frames((A, 20), (B, 20))
    out = silence_between_speakers(labels, heard_except(40, (17, 23)), reach_frames=16)
    np.testing.assert_array_equal(out, frames((A, 17), (NONE, 6), (B, 17)))


@pytest.mark.parametrize("change", [12, 28])  # the change before and after the pause
def test_a_change_near_a_pause_moves_into_it(change: int) -> None:
    labels = frames((A, change), (B, 40 - change))
    out = silence_between_speakers(labels, heard_except(40, (17, 23)), reach_frames=6)
    np.testing.assert_array_equal(out, frames((A, 17), (NONE, 6), (B, 17)))


def test_a_change_out_of_reach_of_any_pause_stays_where_it_is() -> None:
    labels = frames((A, 30), (B, 30))
    out = silence_between_speakers(labels, heard_except(60, (10, 14)), reach_frames=15)
    np.testing.assert_array_equal(out, labels)
    np.testing.assert_array_equal(silence_between_speakers(labels, heard_except(60, (28, 31)), 0), labels)


def test_a_speakers_own_pause_stays_speech() -> None:
    labels = frames((A, 30), (B, 30))
    heard = heard_except(60, (8, 12), (28, 31), (45, 50))  # A's pause, the change's, B's pause
    out = silence_between_speakers(labels, heard, reach_frames=16)
    np.testing.assert_array_equal(out, frames((A, 28), (NONE, 3), (B, 29)))


def test_a_speech_regions_padded_edge_is_not_a_pause() -> None:
    """The VAD pads speech: the unheard frames at a region's start or end have speech on one side
    only, so a change near them stays where it is."""
    labels = frames((NONE, 5), (A, 10), (B, 20), (NONE, 5))
    heard = heard_except(40, (0, 11), (31, 40))  # the padding: 6 frames at each edge
    np.testing.assert_array_equal(silence_between_speakers(labels, heard, reach_frames=16), labels)


def test_a_change_with_another_change_before_its_pause_is_left_alone() -> None:
    labels = frames((A, 20), (B, 3), (C, 17))  # B's 3 frames sit between the first change and the pause
    out = silence_between_speakers(labels, heard_except(40, (25, 28)), reach_frames=10)
    np.testing.assert_array_equal(out[:23], labels[:23])
    np.testing.assert_array_equal(out[23:], frames((B, 2), (NONE, 3), (C, 12)))


def test_pauses_outside_speech_and_no_speech_at_all_change_nothing() -> None:
    labels = frames((A, 10), (NONE, 10), (B, 10))
    out = silence_between_speakers(labels, heard_except(30, (10, 20)), reach_frames=16)
    np.testing.assert_array_equal(out, labels)
    empty = np.full(20, NONE)
    np.testing.assert_array_equal(silence_between_speakers(empty, np.zeros(20, dtype=bool), 16), empty)


def test_speech_frames_keep_what_the_hysteresis_heard_beside_the_bridged_mask() -> None:
    probs = np.full(100, 0.9, dtype=np.float32)
    probs[40:46] = 0.05  # a 0.19 s dip: bridged by the 0.3 s minimum silence
    probs[80:] = 0.05
    speech = speech_frames(probs, VADConfig())
    assert speech.mask[40:46].all() and not speech.heard[40:46].any()
    assert speech.heard[:40].all() and speech.heard[46:80].all()
    np.testing.assert_array_equal(speech.mask, probabilities_to_mask(probs, VADConfig()))
    np.testing.assert_array_equal(Speech.of_mask(speech.mask).heard, speech.mask)


def test_the_setting_is_bounded_and_zero_turns_it_off() -> None:
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speaker_change_reach_seconds"):
            PauseRules(speaker_change_reach_seconds=bad)
    assert DiarizationConfig().pauses.speaker_change_reach_seconds == 0.5
    assert StreamingConfig().pauses == DiarizationConfig().pauses  # one rule, offline and live


def test_the_offline_pipeline_puts_silence_between_two_voices(embedding_model) -> None:  # type: ignore[no-untyped-def]
    """Two synthetic voices 0.4 s apart, so the VAD's rules bridge the pause: with the step the
    hypothesis has silence there; with it off, one speaker runs straight into the other."""
    frame = round(FRAME_SECONDS * 16000)
    n = 200  # 6.4 s
    speech_frames_at = np.r_[10:95, 108:190]
    heard = np.zeros(n, dtype=bool)
    heard[speech_frames_at] = True
    mask = heard.copy()
    mask[95:108] = True  # what the rules bridge (13 frames = 0.42 s)
    rng = np.random.default_rng(0)
    t = np.arange(n * frame) / 16000
    audio = np.zeros(n * frame, dtype=np.float32)
    audio[10 * frame : 95 * frame] = 0.3 * np.sin(2 * np.pi * 140 * t[10 * frame : 95 * frame])
    audio[108 * frame : 190 * frame] = 0.3 * np.sign(np.sin(2 * np.pi * 260 * t[108 * frame : 190 * frame]))
    audio += 0.001 * rng.standard_normal(len(audio)).astype(np.float32)
    speech = Speech(mask, heard)

    def speakers_at(segments: list[Segment], seconds: float) -> set[str]:
        return {s.speaker for s in segments if s.start <= seconds < s.end}

    on = Diarizer(DiarizationConfig(), embedding_model).diarize(audio, num_speakers=2, speech=speech)
    off = Diarizer(DiarizationConfig(pauses=PauseRules(0.0, 0.6)), embedding_model).diarize(
        audio, num_speakers=2, speech=speech
    )
    assert len({s.speaker for s in on}) == 2
    pause = 101 * FRAME_SECONDS  # inside the bridged pause
    assert speakers_at(off, pause) and not speakers_at(on, pause)
    assert speakers_at(on, 50 * FRAME_SECONDS) != speakers_at(on, 150 * FRAME_SECONDS)


def test_a_speakers_own_short_silence_is_speech_and_no_one_elses() -> None:
    labels = frames((A, 10), (NONE, 5), (A, 10), (NONE, 5), (B, 10), (NONE, 20), (B, 10))
    out = bridge_own_pauses(labels, max_frames=6)
    # A's 5-frame silence is A's; between A and B stays silence; B's 20 frames are longer than 6.
    np.testing.assert_array_equal(out, frames((A, 25), (NONE, 5), (B, 10), (NONE, 20), (B, 10)))
    np.testing.assert_array_equal(bridge_own_pauses(labels, 0), labels)


def test_silence_at_the_edges_is_never_bridged() -> None:
    labels = frames((NONE, 3), (A, 10), (NONE, 3))
    np.testing.assert_array_equal(bridge_own_pauses(labels, max_frames=10), labels)


def test_the_own_pause_setting_is_bounded() -> None:
    for bad in (-0.1, float("nan"), 11.0):
        with pytest.raises(ValueError, match="own_pause_seconds"):
            PauseRules(own_pause_seconds=bad)
    assert DiarizationConfig().pauses.own_pause_seconds == 0.6
