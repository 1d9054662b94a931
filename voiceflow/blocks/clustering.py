"""The online clustering block: hops' embeddings -> a speaker label on every speech frame."""

from __future__ import annotations

import numpy as np

from voiceflow.blocks.base import Block, FrameHop
from voiceflow.clustering.online import OnlineClusterer
from voiceflow.segments import silence_between_speakers

PENDING = -2  # speech whose speaker is a not-yet-confirmed new candidate
SILENCE = -1
BRIDGE_LOOKBACK = 32  # frames (~1 s): longer than any pause the VAD's rules bridge


class OnlineLabels(Block[FrameHop]):
    """The hop's speech frames take the speaker its embedding is clustered to; labels never change
    once given. A voice the clusterer has not confirmed yet leaves its frames PENDING until it is
    (or another known voice comes back); a hop with speech but no embedding goes to whoever spoke
    last rather than nobody (dropping it would be all missed speech). With `change_reach_frames`,
    a change of speaker given on a hop moves into the nearest pause the VAD heard within that
    reach (segments.silence_between_speakers), among frames that are still drafts: the run
    reaching the hop, and the hop itself."""

    def __init__(self, clusterer: OnlineClusterer, change_reach_frames: int = 0) -> None:
        self.clusterer = clusterer
        self.change_reach_frames = change_reach_frames
        self.labels: list[int] = []  # per frame of the stream, up to the last hop run
        self.heard: list[bool] = []  # the VAD's hysteresis per frame, as far as labels go
        # Pending frames always come after every assigned frame (an assignment settles them all),
        # so one index is enough to find them without scanning the stream's history.
        self._first_pending: int | None = None
        self._last_speaker: int | None = None

    def __call__(self, hop: FrameHop) -> None:
        self.labels.extend([SILENCE] * (hop.end - len(self.labels)))
        self.heard.extend([True] * (hop.end - len(self.heard)))
        if len(hop.heard) == hop.end - hop.start:
            self.heard[hop.start : hop.end] = hop.heard.tolist()
        if not hop.speech.any():
            return
        speaking = [hop.start + int(i) for i in np.flatnonzero(hop.speech)]
        if hop.embedding is None:
            if self._last_speaker is not None:
                for i in speaking:
                    self.labels[i] = self._last_speaker
            return
        speaker = self.clusterer.assign(hop.embedding)
        if speaker is None:
            for i in speaking:
                self.labels[i] = PENDING
            if speaking and self._first_pending is None:
                self._first_pending = speaking[0]
            return
        self._last_speaker = speaker
        first_change = hop.start
        if self._first_pending is not None:
            # A confirmed candidate (or a rejoin) settles the frames that were waiting on it.
            first_change = self._first_pending
            for i in range(self._first_pending, hop.start):
                if self.labels[i] == PENDING:
                    self.labels[i] = speaker
            self._first_pending = None
        for i in speaking:
            self.labels[i] = speaker
        self._place_changes(first_change, hop.end)

    def _place_changes(self, first_change: int, end: int) -> None:
        """The changes of speaker from `first_change` on, moved into the pauses heard near them.
        The look-back covers the reach and the longest pause the VAD's rules bridge; every frame it
        may relabel belongs to the run that reaches `first_change`, which is still a draft."""
        if self.change_reach_frames <= 0:
            return
        lo = max(0, first_change - self.change_reach_frames - BRIDGE_LOOKBACK)
        span = np.array(self.labels[lo:end], dtype=int)
        heard = np.array(self.heard[lo:end], dtype=bool)
        placed = silence_between_speakers(span, heard, self.change_reach_frames, first_change - lo)
        self.labels[lo:end] = placed.tolist()

    def mutable_from(self, decided: int) -> int:
        return decided if self._first_pending is None else min(decided, self._first_pending)

    def live(self, lo: int) -> np.ndarray:
        """Labels from frame `lo` on, pending ones shown as silence until their speaker is known."""
        labels = np.array(self.labels[lo:], dtype=int)
        labels[labels == PENDING] = SILENCE
        return labels

    def final(self) -> np.ndarray:
        """All labels at the end of the stream: candidates never confirmed belong to the nearest
        known speaker's run (nobody's when no speaker was ever confirmed)."""
        labels = np.array(self.labels, dtype=int)
        pending = labels == PENDING
        if self.clusterer.num_speakers == 0:
            labels[pending] = SILENCE
            return labels
        known = np.flatnonzero(labels >= 0)
        for i in np.flatnonzero(pending):
            labels[i] = labels[known[np.argmin(np.abs(known - i))]] if known.size else SILENCE
        return labels
