"""The aggregation block's live view over several tracks: a final segment of one track that runs
across another track's draft is never cut into a second segment under a new identity."""

from __future__ import annotations

import numpy as np

from voiceflow.blocks.aggregation import FrameSegments

SILENCE = -1


class Track:
    """A frame track whose frames are given as the stream goes (what a labels block does)."""

    def __init__(self) -> None:
        self.frames: list[int] = []

    def live(self, lo: int) -> np.ndarray:
        return np.array(self.frames[lo:], dtype=int)

    def final(self) -> np.ndarray:
        return np.array(self.frames, dtype=int)


def test_a_final_segment_across_another_tracks_draft_is_reported_once() -> None:
    first, second = Track(), Track()
    aggregation = FrameSegments([first, second], max_gap=0.0)
    # Speaker 0 holds frames 0-19 on the first track; speaker 1 joins on the second track at frame
    # 10 and goes on talking on the first track after frame 20 (an overlap, then a turn).
    first.frames = [0] * 20 + [1] * 10
    second.frames = [SILENCE] * 10 + [1] * 10 + [SILENCE] * 10
    reports = [aggregation.live(25)]  # speaker 0 is final (ends at 20 < 25), speaker 1 a draft from 10
    first.frames += [1] * 20 + [SILENCE] * 10
    second.frames += [SILENCE] * 30
    reports.append(aggregation.live(60))  # speaker 1 ended at 50: final too
    # a segment may be shown again unchanged (the session's ledger sends only changes), never cut
    finals = {(s.start, s.end, s.speaker) for report in reports for s in report if s.final}
    assert finals == {(s.start, s.end, s.speaker) for s in aggregation.result()}
    assert len([s for s in finals if s[2] == "SPEAKER_00"]) == 1
