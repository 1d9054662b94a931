"""Staggered reading: which segment and which frame each window is read from, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from voiceflow.staggered import read_staggered, segment_layout, serving_starts

WINDOW = 25600
FRAME_HOP = 160


def fake_frames(segments: np.ndarray) -> np.ndarray:
    """Frame t of a segment whose audio is arange(start, ...) reads back (start, t)."""
    frames = np.arange(segments.shape[1] // FRAME_HOP + 1)
    out = np.zeros((len(segments), len(frames), 2), dtype=np.float32)
    out[:, :, 0] = segments[:, :1]
    out[:, :, 1] = frames
    return out


@pytest.mark.parametrize(("streams", "layout"), [(2, (51200, 25600)), (3, (38400, 12800)), (5, (32000, 6400))])
def test_k_streams_are_segments_of_w_k_over_k_minus_1_every_w_over_k_minus_1(
    streams: int, layout: tuple[int, int]
) -> None:
    assert segment_layout(WINDOW, streams) == layout


def test_a_named_hop_lays_out_segments_of_window_plus_hop_whatever_the_streams() -> None:
    assert segment_layout(WINDOW, 3, 9600) == (35200, 9600)
    assert segment_layout(WINDOW, 2, 9600) == segment_layout(WINDOW, 5, 9600)
    assert segment_layout(WINDOW, 3, WINDOW) == segment_layout(WINDOW, 2)


@pytest.mark.parametrize(
    ("window", "streams", "hop"), [(WINDOW, 1, 0), (WINDOW, 0, 0), (0, 3, 0), (WINDOW, 3, -1), (WINDOW, 3, WINDOW + 1)]
)
def test_impossible_layouts_are_refused(window: int, streams: int, hop: int) -> None:
    with pytest.raises(ValueError, match=r"streams|window|segment hop"):
        segment_layout(window, streams, hop)


@pytest.mark.parametrize(("streams", "segment_hop"), [(3, 0), (4, 0), (3, 9600)])
def test_each_window_sees_its_own_samples_plus_less_than_one_hop_before(streams: int, segment_hop: int) -> None:
    _, hop = segment_layout(WINDOW, streams, segment_hop)
    ends = np.arange(WINDOW, 20 * 16000, 512)
    starts = serving_starts(ends, WINDOW, hop)
    history = ends - WINDOW - starts
    assert (starts % hop == 0).all() and (history >= 0).all() and (history < hop).all()


@pytest.mark.parametrize("segment_hop", [0, 9600])
def test_every_window_is_read_at_its_end_frame_from_its_serving_segment(segment_hop: int) -> None:
    audio = np.arange(10 * 16000 + 77, dtype=np.float32)  # sample value = its index
    ends = np.concatenate([np.arange(WINDOW, len(audio) + 1, 3200), [len(audio)]])
    done: list[tuple[int, int]] = []
    out = read_staggered(
        fake_frames, audio, ends, WINDOW, 3, FRAME_HOP, 4, lambda d, t: done.append((d, t)), segment_hop
    )
    _, hop = segment_layout(WINDOW, 3, segment_hop)
    starts = serving_starts(ends, WINDOW, hop)
    assert np.array_equal(out[:, 0], starts)
    assert np.array_equal(out[:, 1], (ends - starts) // FRAME_HOP)
    assert done[-1] == (len(ends), len(ends))  # the last segments are shorter (end of file), still read


def test_window_ends_outside_the_audio_are_refused() -> None:
    audio = np.zeros(30000, dtype=np.float32)
    for bad in ([0], [30001]):
        with pytest.raises(ValueError, match="inside the audio"):
            read_staggered(fake_frames, audio, np.array(bad), WINDOW, 3, FRAME_HOP)
    assert read_staggered(fake_frames, audio, np.array([], dtype=int), WINDOW, 3, FRAME_HOP).shape[0] == 0
