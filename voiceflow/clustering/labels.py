"""Label bookkeeping every clustering method shares: numbering, centroids, count bounds.

Kept apart from the methods so each method module (offline AHC, NME-SC, VBx) imports only this,
never another method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from voiceflow.embedding import l2_normalize


def validate_speaker_bounds(num: int | None, lo: int | None, hi: int | None) -> None:
    for name, value in (("num_speakers", num), ("min_speakers", lo), ("max_speakers", hi)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"min_speakers ({lo}) is greater than max_speakers ({hi})")


@dataclass(frozen=True)
class SpeakerBounds:
    """The caller's speaker count (`num`) or range (`min`..`max`); None: the pipeline decides."""

    num: int | None = None
    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        validate_speaker_bounds(self.num, self.min, self.max)


UNBOUNDED = SpeakerBounds()


def relabel_by_first_appearance(labels: np.ndarray) -> np.ndarray:
    mapping: dict[int, int] = {}
    out = np.empty(len(labels), dtype=int)
    for i, label in enumerate(labels):
        out[i] = mapping.setdefault(int(label), len(mapping))
    return out


def centroids_of(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids, their L2-normalised mean rows)."""
    ids = np.unique(labels)
    cents = np.stack([x[labels == i].mean(axis=0) for i in ids])
    return ids, l2_normalize(cents)


def reassign_to_centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every row to its most cosine-similar cluster centroid."""
    ids, cents = centroids_of(x, labels)
    return ids[np.argmax(x @ cents.T, axis=1)]


def count_target(found: int, n: int, num: int | None, lo: int | None, hi: int | None) -> int | None:
    """The cluster count the user's bounds force (None when `found` already satisfies them)."""
    target = min(num, n) if num is not None else min(max(found, lo or 1), hi or n, n)
    return None if target == found else target


def cut_to_count(x: np.ndarray, k: int, reassign_iterations: int = 2) -> np.ndarray:
    """`k` clusters of the rows of `x` (L2-normalised): average-linkage AHC cut at k, then centroid
    re-assignment. The fallback every method uses when the user's count overrides its own."""
    if k <= 1 or len(x) <= 1:
        return np.zeros(len(x), dtype=int)
    tree = linkage(pdist(x, metric="cosine"), method="average")
    labels = fcluster(tree, t=min(k, len(x)), criterion="maxclust") - 1
    for _ in range(reassign_iterations):
        updated = reassign_to_centroids(x, labels)
        if len(np.unique(updated)) != len(np.unique(labels)):
            break  # re-assignment may empty a cluster; keep exactly k
        labels = updated
    return labels
