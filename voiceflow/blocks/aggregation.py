"""The aggregation block of the frame-grid pipelines: frame label tracks -> speaker segments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from voiceflow.blocks.base import settled
from voiceflow.segments import Segment, frames_to_segments, merge_adjacent, merge_per_speaker
from voiceflow.vad import FRAME_SECONDS


class FrameTrack(Protocol):
    """A block's speaker per frame (-1: nobody): the primary speaker, or a second one where two talk."""

    def live(self, lo: int) -> np.ndarray:
        """The track from frame `lo` on, as it stands."""
        ...

    def final(self) -> np.ndarray:
        """The whole track at the end of the stream."""
        ...


class FrameSegments:
    """Tracks -> segments, merged one way for the live view and the result so their segments are
    the same: one track's runs are apart in time, several tracks' may overlap (then a speaker's
    touching pieces are merged speaker by speaker)."""

    def __init__(self, tracks: Sequence[FrameTrack], max_gap: float) -> None:
        self.tracks = tuple(tracks)
        self.max_gap = max_gap
        # Every segment before this frame is final and reported, and none crosses it: each view
        # recomputes the segments from here on only.
        self._emit_from = 0

    def segments(self, tracks: Sequence[np.ndarray], first_frame: int) -> list[Segment]:
        """Tracks starting at stream frame `first_frame` -> merged segments."""
        segs = [seg for track in tracks for seg in frames_to_segments(track, FRAME_SECONDS, first_frame=first_frame)]
        if len(tracks) == 1:
            return merge_adjacent(segs, self.max_gap)
        return merge_per_speaker(segs, self.max_gap)

    def live(self, mutable: int) -> list[Segment]:
        """The segments from the last draft on as `result()` will give them, except those starting
        at or after frame `mutable` (the first whose speaker may still change); final by
        `settled`. Advances past what is final."""
        lo, edge = self._emit_from, mutable * FRAME_SECONDS
        view = [
            Segment(seg.start, seg.end, seg.speaker, settled(seg.end, edge, self.max_gap))
            for seg in self.segments([track.live(lo) for track in self.tracks], lo)
            if seg.start < edge - 1e-9
        ]
        drafts = [seg.start for seg in view if not seg.final]
        self._emit_from = self._uncut(view, min(drafts)) if drafts else max(lo, mutable)
        return view

    @staticmethod
    def _uncut(view: Sequence[Segment], start: float) -> int:
        """The frame the next view starts from: the first draft's, or earlier when a final segment
        runs across it (several tracks' segments overlap), so no later view cuts that segment into
        a new one under another identity."""
        while True:
            crossing = [seg.start for seg in view if seg.start < start - 1e-9 < seg.end - 2e-9]
            if not crossing:
                return round(start / FRAME_SECONDS)
            start = min(crossing)

    def result(self) -> list[Segment]:
        """The whole stream's segments from the tracks' final state, all final."""
        return self.segments([track.final() for track in self.tracks], 0)
