"""The online clustering block: hops' embeddings -> a speaker label on every speech frame."""

from __future__ import annotations

import numpy as np

from voiceflow.blocks.base import Block, FrameHop
from voiceflow.clustering.online import OnlineClusterer

PENDING = -2  # speech whose speaker is a not-yet-confirmed new candidate
SILENCE = -1


class OnlineLabels(Block[FrameHop]):
    """The hop's speech frames take the speaker its embedding is clustered to; labels never change
    once given. A voice the clusterer has not confirmed yet leaves its frames PENDING until it is
    (or another known voice comes back); a hop with speech but no embedding goes to whoever spoke
    last rather than nobody (dropping it would be all missed speech)."""

    def __init__(self, clusterer: OnlineClusterer) -> None:
        self.clusterer = clusterer
        self.labels: list[int] = []  # per frame of the stream, up to the last hop run
        # Pending frames always come after every assigned frame (an assignment settles them all),
        # so one index is enough to find them without scanning the stream's history.
        self._first_pending: int | None = None
        self._last_speaker: int | None = None

    def __call__(self, hop: FrameHop) -> None:
        self.labels.extend([SILENCE] * (hop.end - len(self.labels)))
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
        if self._first_pending is not None:
            # A confirmed candidate (or a rejoin) settles the frames that were waiting on it.
            for i in range(self._first_pending, hop.start):
                if self.labels[i] == PENDING:
                    self.labels[i] = speaker
            self._first_pending = None
        for i in speaking:
            self.labels[i] = speaker

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
