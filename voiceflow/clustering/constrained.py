"""Clustering of *local* speakers: two speakers the segmentation separated in one chunk are never merged.

A chunk's local speakers are distinct people by construction (the segmentation network told them
apart, overlaps included), so they must map to distinct global speakers. Offline, the chunk's
local speakers are matched to the global clusters' centroids with the Hungarian algorithm
(pyannote 3.x's constrained assignment); online, the same matching runs against the centroids
known so far, and an unmatched local speaker with enough speech starts a new speaker (diart's
incremental clustering).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from voiceflow.clustering.offline import OfflineClusteringConfig, centroids_of, cluster_embeddings
from voiceflow.embedding import l2_normalize
from voiceflow.validation import require_seconds

UNASSIGNED = -1


def match_to_centroids(similarity: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[S] global index per local speaker (UNASSIGNED where not valid), distinct where possible.

    Valid rows get the assignment maximising their total similarity with no centroid used twice;
    if a chunk holds more valid local speakers than there are centroids, the rest take their
    closest centroid (then the segmentation over-split one person, and its parts rejoin).
    """
    out = np.full(similarity.shape[0], UNASSIGNED, dtype=int)
    rows = np.flatnonzero(valid)
    if rows.size == 0 or similarity.shape[1] == 0:
        return out
    matched_rows, cols = linear_sum_assignment(similarity[rows], maximize=True)
    out[rows[matched_rows]] = cols
    left = np.setdiff1d(rows, rows[matched_rows])
    out[left] = np.argmax(similarity[left], axis=1)
    return out


def cluster_local_speakers(
    embeddings: np.ndarray,
    valid: np.ndarray,
    config: OfflineClusteringConfig | None = None,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> np.ndarray:
    """[C, S] global speaker per (chunk, local speaker), UNASSIGNED for slots without an embedding.

    The valid embeddings are clustered by the engine's offline clustering (automatic count); the
    constraint is then enforced chunk by chunk against the clusters' centroids.
    """
    config = config or OfflineClusteringConfig()
    labels = np.full(valid.shape, UNASSIGNED, dtype=int)
    if not valid.any():
        return labels
    flat = embeddings[valid].astype(np.float64)
    clusters = cluster_embeddings(flat, config, num_speakers, min_speakers, max_speakers)
    raw = l2_normalize(flat)
    space = l2_normalize(raw - raw.mean(axis=0)) if config.center and len(raw) > 1 else raw
    ids, centroids = centroids_of(space, clusters)
    projected = np.zeros((*embeddings.shape[:2], space.shape[1]))
    projected[valid] = space
    for c in range(valid.shape[0]):
        matched = match_to_centroids(projected[c] @ centroids.T, valid[c])
        labels[c] = np.where(matched >= 0, ids[np.maximum(matched, 0)], UNASSIGNED)
    return labels


@dataclass(frozen=True)
class ConstrainedOnlineConfig:
    # Cosine similarity (after the model's background mean is removed) to join a known speaker.
    # 0.5 with 6-chunk confirmation was the best of the dev-set search (research/scripts/tune_segmentation.py).
    join_threshold: float = 0.5
    new_speaker_seconds: float = 1.0  # speech a local speaker needs in its chunk to found a new speaker
    update_seconds: float = 0.8  # speech a local speaker needs in its chunk to move its centroid
    # A new voice must be heard in this many consecutive chunks, agreeing with itself, before it
    # becomes a speaker: one odd chunk (crosstalk, a cough, a badly split voice) founds nobody.
    confirm_chunks: int = 6  # 3 s at the streaming pipeline's 0.5 s step
    max_speakers: int = 20

    def __post_init__(self) -> None:
        if not -1.0 < self.join_threshold < 1.0:
            raise ValueError("join_threshold must be a cosine similarity in (-1, 1)")
        if self.max_speakers < 1 or self.confirm_chunks < 1:
            raise ValueError("max_speakers >= 1 and confirm_chunks >= 1 are required")
        # NaN or more speech than any chunk holds: no speaker is ever founded (or moved).
        require_seconds(self, "new_speaker_seconds", "update_seconds")


@dataclass
class _Candidate:
    total: np.ndarray  # sum of its chunks' embeddings
    heard: int  # consecutive chunks it was heard in


@dataclass
class ConstrainedOnlineClusterer:
    """Global speakers from a stream of chunks' local speakers; a label, once given, never changes."""

    config: ConstrainedOnlineConfig = field(default_factory=ConstrainedOnlineConfig)
    _sums: list[np.ndarray] = field(default_factory=list)
    _candidates: list[_Candidate] = field(default_factory=list)  # unconfirmed voices, kept while heard

    @property
    def num_speakers(self) -> int:
        return len(self._sums)

    def centroids(self) -> np.ndarray:
        return l2_normalize(np.stack(self._sums)) if self._sums else np.zeros((0, 0))

    def assign(self, embeddings: np.ndarray, valid: np.ndarray, speech_seconds: np.ndarray) -> np.ndarray:
        """[S] global speaker per local speaker of one chunk (UNASSIGNED: no embedding, or too
        little speech to found a new speaker with nobody close enough to join)."""
        emb = l2_normalize(np.asarray(embeddings, dtype=np.float64))
        labels = np.full(len(valid), UNASSIGNED, dtype=int)
        matched = np.full(len(valid), UNASSIGNED, dtype=int)
        sims = np.zeros((len(valid), 0))
        if self._sums:
            sims = emb @ self.centroids().T
            matched = match_to_centroids(sims, valid)
        still_heard: list[_Candidate] = []
        # Longest speakers first: they are the surest voices, and found new speakers first.
        for s in np.argsort(-np.asarray(speech_seconds), kind="stable"):
            if not valid[s]:
                continue
            joins = matched[s] >= 0 and sims[s, matched[s]] >= self.config.join_threshold
            if joins:
                labels[s] = matched[s]
                if speech_seconds[s] >= self.config.update_seconds:
                    self._sums[matched[s]] = self._sums[matched[s]] + emb[s]
            elif speech_seconds[s] >= self.config.new_speaker_seconds and self.num_speakers < self.config.max_speakers:
                heard = self._hear_candidate(emb[s], still_heard)
                if heard is not None:
                    self._sums.append(heard)
                    labels[s] = self.num_speakers - 1
            elif matched[s] >= 0:
                labels[s] = matched[s]  # too short to be sure it is new: the closest voice keeps it
        self._candidates = still_heard
        return labels

    def _hear_candidate(self, emb: np.ndarray, still_heard: list[_Candidate]) -> np.ndarray | None:
        """Count this chunk for the candidate voice `emb` agrees with (or a new one); its summed
        embedding once it has been heard in `confirm_chunks` consecutive chunks."""
        for candidate in self._candidates:
            agrees = float(l2_normalize(candidate.total) @ emb) >= self.config.join_threshold
            if agrees and all(candidate is not other for other in still_heard):
                candidate.total, candidate.heard = candidate.total + emb, candidate.heard + 1
                break
        else:
            candidate = _Candidate(emb.copy(), 1)
        if candidate.heard >= self.config.confirm_chunks:
            return candidate.total
        still_heard.append(candidate)
        return None
