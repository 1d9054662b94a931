"""Online clustering for live streams: incremental centroids, labels that never change.

Each embedding joins the most similar speaker when the cosine similarity clears
`join_threshold`; otherwise it is held as a *candidate* new speaker. A candidate becomes a real
speaker only after `confirm_windows` consecutive unassignable windows that agree with each
other, so one noisy window (a cough, crosstalk) does not invent a speaker. Centroids are running
means of their members, so a label assigned to past audio never has to be revised.

`scoring="plda"` replaces the cosine with the model's PLDA (clustering/plda.py): a window joins
the speaker under whom it is most likely, by the log-likelihood ratio "this speaker" vs "someone
new" given everything that speaker has said so far. The ratio knows how much a voice varies
across channels (the PLDA learnt it), and it grows surer as a speaker accumulates windows, so a
well-heard speaker is not split by one odd window while a new voice is still told apart early;
no cosine threshold fitted to one channel is involved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from voiceflow.clustering.plda import PLDA, PLDAError
from voiceflow.embedding import l2_normalize

SCORINGS = ("cosine", "plda")


@dataclass(frozen=True)
class OnlineClusteringConfig:
    # Chosen on the dev sets for GE2E embeddings minus their background mean (what the streaming
    # session feeds in when the model ships one); raw GE2E would want ~0.75.
    join_threshold: float = 0.5  # cosine similarity to join an existing speaker
    confirm_windows: int = 4  # consecutive unassignable windows (~2 s) before a new speaker is created
    candidate_agreement: float = 0.5  # similarity the candidate windows must share
    max_speakers: int = 20
    centroid_momentum: float = 0.0  # 0 = plain running mean
    scoring: str = "cosine"  # or "plda": the model's PLDA log-likelihood ratio (needs its X.plda.npz)
    plda_threshold: float = 0.0  # "plda": the ratio a window needs to join (0: as likely as new)
    # "plda": evidence one window adds; windows overlap (1.6 s every 0.48 s), so each counts as less
    plda_window_weight: float = 0.3
    plda_dim: int = 128

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError(f"online scoring must be one of {', '.join(SCORINGS)}, not {self.scoring!r}")
        if not 0.0 < self.plda_window_weight <= 1.0 or self.plda_dim < 1:
            raise ValueError("plda_window_weight must be in (0, 1] and plda_dim >= 1")
        if not -1.0 < self.join_threshold < 1.0:
            raise ValueError("join_threshold must be a cosine similarity in (-1, 1)")
        if self.confirm_windows < 1 or self.max_speakers < 1:
            raise ValueError("confirm_windows and max_speakers must be >= 1")
        # At 1 (or above) the candidates never agree: no second speaker is ever created.
        if not -1.0 <= self.candidate_agreement < 1.0:
            raise ValueError("candidate_agreement must be a cosine similarity in [-1, 1)")
        if not 0.0 <= self.centroid_momentum <= 1.0:
            raise ValueError("centroid_momentum must be a fraction in 0..1")
        if not -math.inf < self.plda_threshold < math.inf:
            raise ValueError("plda_threshold must be finite")


def plda_join_scores(x: np.ndarray, sums: np.ndarray, counts: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """[S] log p(x | speaker s, after counts[s] windows summing to sums[s]) - log p(x | a new speaker),
    in PLDA space (within-speaker covariance I, across-speaker diag(psi)); counts may be fractional."""
    n = counts[:, None]
    mean = psi * sums / (1.0 + n * psi)  # the posterior mean of each speaker's voice
    var = 1.0 + psi / (1.0 + n * psi)  # predictive variance of one more window of that speaker
    same = -0.5 * np.sum(np.log(var) + (x - mean) ** 2 / var, axis=1)
    new = -0.5 * np.sum(np.log1p(psi) + x**2 / (1.0 + psi))
    return same - new


@dataclass
class OnlineClusterer:
    config: OnlineClusteringConfig = field(default_factory=OnlineClusteringConfig)
    # "plda" scoring: the model's PLDA, and whether the embeddings arrive already centred on the
    # model's background mean (then that mean, not the PLDA's training mean, is taken off)
    plda: PLDA | None = None
    centred: bool = False
    _sums: list[np.ndarray] = field(default_factory=list)
    _counts: list[int] = field(default_factory=list)
    _candidates: list[np.ndarray] = field(default_factory=list)
    _plda_sums: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.config.scoring == "plda" and self.plda is None:
            raise PLDAError("online scoring 'plda' needs the embedding model's PLDA (X.plda.npz)")

    @property
    def num_speakers(self) -> int:
        return len(self._counts)

    def centroids(self) -> np.ndarray:
        if not self._sums:
            return np.zeros((0, 0), dtype=np.float32)
        return l2_normalize(np.stack(self._sums))

    def assign(self, embedding: np.ndarray) -> int | None:
        """Speaker index for this window, or None while a possible new speaker is unconfirmed."""
        if self.config.scoring == "plda":
            return self._assign_plda(np.asarray(embedding, dtype=np.float64).reshape(-1))
        emb = l2_normalize(np.asarray(embedding, dtype=np.float64).reshape(-1))
        if not self._sums:
            return self._start_speaker(emb)
        sims = self.centroids() @ emb
        best = int(np.argmax(sims))
        if sims[best] >= self.config.join_threshold or self.num_speakers >= self.config.max_speakers:
            self._candidates.clear()
            self._update(best, emb)
            return best
        return self._hold_candidate(emb)

    def _hold_candidate(self, emb: np.ndarray) -> int | None:
        """A window no speaker takes: held as a possible new speaker, who is born (and returned)
        once `confirm_windows` such windows in a row agree with each other."""
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

    def _assign_plda(self, embedding: np.ndarray) -> int | None:
        assert self.plda is not None
        mean = np.zeros_like(embedding) if self.centred else None
        f = self.plda.features(embedding[None, :], self.config.plda_dim, mean)[0]
        psi = self.plda.phi(self.config.plda_dim)
        weight = self.config.plda_window_weight
        if not self._plda_sums:
            return self._start_plda_speaker([f])
        scores = plda_join_scores(f, np.stack(self._plda_sums), weight * np.array(self._counts, float), psi)
        best = int(np.argmax(scores))
        if scores[best] >= self.config.plda_threshold or self.num_speakers >= self.config.max_speakers:
            self._candidates.clear()
            self._plda_sums[best] = self._plda_sums[best] + weight * f
            self._counts[best] += 1
            return best
        if self._candidates:
            pending = np.stack(self._candidates)
            agree = plda_join_scores(f, weight * pending.sum(axis=0)[None], np.array([weight * len(pending)]), psi)
            if agree[0] < self.config.plda_threshold:
                self._candidates.clear()
        self._candidates.append(f)
        if len(self._candidates) >= self.config.confirm_windows:
            members, self._candidates = self._candidates, []
            return self._start_plda_speaker(members)
        return None

    def _start_plda_speaker(self, members: list[np.ndarray]) -> int:
        weight = self.config.plda_window_weight
        self._plda_sums.append(weight * np.sum(members, axis=0))
        self._counts.append(len(members))
        return len(self._plda_sums) - 1

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
