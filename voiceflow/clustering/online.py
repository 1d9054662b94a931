"""Online clustering for live streams: incremental centroids, labels that never change.

Each embedding joins the most similar speaker when the cosine similarity clears
`join_threshold`; otherwise it is held as a *candidate* new speaker. A candidate becomes a real
speaker only after `confirm_windows` consecutive unassignable windows that agree with each
other, so one noisy window (a cough, crosstalk) does not invent a speaker. Centroids are running
means of their members, so a label assigned to past audio never has to be revised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from voiceflow.embedding import l2_normalize


@dataclass(frozen=True)
class OnlineClusteringConfig:
    # Chosen on the dev sets for GE2E embeddings minus their background mean (what the streaming
    # session feeds in when the model ships one); raw GE2E would want ~0.75.
    join_threshold: float = 0.5  # cosine similarity to join an existing speaker
    confirm_windows: int = 4  # consecutive unassignable windows (~2 s) before a new speaker is created
    candidate_agreement: float = 0.5  # similarity the candidate windows must share
    max_speakers: int = 20
    centroid_momentum: float = 0.0  # 0 = plain running mean

    def __post_init__(self) -> None:
        if not -1.0 < self.join_threshold < 1.0:
            raise ValueError("join_threshold must be a cosine similarity in (-1, 1)")
        if self.confirm_windows < 1 or self.max_speakers < 1:
            raise ValueError("confirm_windows and max_speakers must be >= 1")


@dataclass
class OnlineClusterer:
    config: OnlineClusteringConfig = field(default_factory=OnlineClusteringConfig)
    _sums: list[np.ndarray] = field(default_factory=list)
    _counts: list[int] = field(default_factory=list)
    _candidates: list[np.ndarray] = field(default_factory=list)

    @property
    def num_speakers(self) -> int:
        return len(self._sums)

    def centroids(self) -> np.ndarray:
        if not self._sums:
            return np.zeros((0, 0), dtype=np.float32)
        return l2_normalize(np.stack(self._sums))

    def assign(self, embedding: np.ndarray) -> int | None:
        """Speaker index for this window, or None while a possible new speaker is unconfirmed."""
        emb = l2_normalize(np.asarray(embedding, dtype=np.float64).reshape(-1))
        if not self._sums:
            return self._start_speaker(emb)
        sims = self.centroids() @ emb
        best = int(np.argmax(sims))
        if sims[best] >= self.config.join_threshold or self.num_speakers >= self.config.max_speakers:
            self._candidates.clear()
            self._update(best, emb)
            return best
        if self._candidates and float(l2_normalize(np.mean(self._candidates, axis=0)) @ emb) < (
            self.config.candidate_agreement
        ):
            self._candidates.clear()
        self._candidates.append(emb)
        if len(self._candidates) >= self.config.confirm_windows:
            members = self._candidates
            self._candidates = []
            index = self._start_speaker(members[0])
            for extra in members[1:]:
                self._update(index, extra)
            return index
        return None

    def pending_candidates(self) -> int:
        return len(self._candidates)

    def _start_speaker(self, emb: np.ndarray) -> int:
        self._sums.append(emb.copy())
        self._counts.append(1)
        return len(self._sums) - 1

    def _update(self, index: int, emb: np.ndarray) -> None:
        if self.config.centroid_momentum > 0:
            current = l2_normalize(self._sums[index])
            self._sums[index] = self.config.centroid_momentum * current + (1 - self.config.centroid_momentum) * emb
        else:
            self._sums[index] = self._sums[index] + emb
        self._counts[index] += 1
