"""Offline clustering of window embeddings with an automatic speaker count.

1. Centre the recording's embeddings (subtract their mean): what all windows share — room,
   microphone, channel — dominates raw GE2E similarities on far-field audio (AMI: median cosine
   0.72 within a speaker vs 0.60 between speakers); centred, the two separate (0.11 vs -0.23).
2. Average-linkage agglomerative clustering on cosine distance, cut at `threshold`: deliberately
   a little over-segmented.
3. Re-assign every window to its nearest centroid (repairs average linkage's border chaining),
   absorb clusters holding less than `min_cluster_fraction` of the windows.
4. Merge clusters whose *raw* centroids are nearly identical (`merge_threshold`): centring
   makes a one-speaker recording look like noise, and this step puts it back together.
When the user knows the count (or bounds it) the dendrogram is cut at that many clusters instead.
Settings were chosen on the dev sets only (scripts/tune_engine.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from voiceflow.embedding import l2_normalize


@dataclass(frozen=True)
class OfflineClusteringConfig:
    threshold: float = 0.9  # cosine distance (of centred embeddings) at which groups stop merging
    method: str = "average"
    center: bool = True
    reassign_iterations: int = 2
    min_cluster_fraction: float = 0.15  # clusters smaller than this share of windows are absorbed
    merge_threshold: float | None = 0.85  # raw-centroid cosine above which two clusters are one speaker

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 2.0:
            raise ValueError("clustering threshold must be a cosine distance in (0, 2)")
        if self.method not in ("average", "complete", "single", "weighted"):
            raise ValueError(f"unsupported linkage method {self.method!r}")


def cluster_embeddings(
    embeddings: np.ndarray,
    config: OfflineClusteringConfig = OfflineClusteringConfig(),
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> np.ndarray:
    """Labels 0..K-1 for each row, numbered by first appearance."""
    validate_speaker_bounds(num_speakers, min_speakers, max_speakers)
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1:
        return np.zeros(1, dtype=int)
    raw = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    x = l2_normalize(raw - raw.mean(axis=0)) if config.center else raw
    tree = linkage(pdist(x, metric="cosine"), method=config.method)
    if num_speakers is not None:
        labels = fcluster(tree, t=min(num_speakers, n), criterion="maxclust") - 1
        for _ in range(config.reassign_iterations):
            labels = _reassign_to_centroids(x, labels)
        return relabel_by_first_appearance(labels)
    labels = fcluster(tree, t=config.threshold, criterion="distance") - 1
    for _ in range(config.reassign_iterations):
        labels = _reassign_to_centroids(x, labels)
    if config.min_cluster_fraction > 0:
        labels = _absorb_small_clusters(x, labels, config.min_cluster_fraction, min_speakers or 1)
    if config.merge_threshold is not None:
        labels = merge_similar_clusters(raw, labels, config.merge_threshold, min_speakers or 1)
    k = len(np.unique(labels))
    lo, hi = min_speakers or 1, max_speakers or n
    if not lo <= k <= hi:
        labels = fcluster(tree, t=min(max(k, lo), hi, n), criterion="maxclust") - 1
    return relabel_by_first_appearance(labels)


def shift_merge_threshold(config: OfflineClusteringConfig, shift: float) -> OfflineClusteringConfig:
    """`config` on a model's own similarity scale: its merge threshold moved by the model's offset to
    GE2E's raw-centroid cosines (pipelines/export/calibration.py), for which the settings were chosen."""
    if config.merge_threshold is None or shift == 0.0:
        return config
    return replace(config, merge_threshold=config.merge_threshold + shift)


def validate_speaker_bounds(num: int | None, lo: int | None, hi: int | None) -> None:
    for name, value in (("num_speakers", num), ("min_speakers", lo), ("max_speakers", hi)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"min_speakers ({lo}) is greater than max_speakers ({hi})")


def centroids_of(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.unique(labels)
    cents = np.stack([x[labels == i].mean(axis=0) for i in ids])
    return ids, l2_normalize(cents)


def _reassign_to_centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    ids, cents = centroids_of(x, labels)
    return ids[np.argmax(x @ cents.T, axis=1)]


def _absorb_small_clusters(x: np.ndarray, labels: np.ndarray, fraction: float, keep_at_least: int) -> np.ndarray:
    labels = labels.copy()
    while True:
        ids, counts = np.unique(labels, return_counts=True)
        if len(ids) <= keep_at_least:
            return labels
        smallest = int(np.argmin(counts))
        if counts[smallest] >= fraction * len(labels):
            return labels
        others = ids[ids != ids[smallest]]
        _, cents = centroids_of(x[labels != ids[smallest]], labels[labels != ids[smallest]])
        members = labels == ids[smallest]
        labels[members] = others[np.argmax(x[members] @ cents.T, axis=1)]


CentroidsFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def merge_similar_clusters(
    raw: np.ndarray, labels: np.ndarray, threshold: float, keep_at_least: int = 1, centroids: CentroidsFn = centroids_of
) -> np.ndarray:
    """Merge the two clusters with the most similar centroids while their cosine is >= `threshold`.

    `centroids` (ids and L2-normalised centroids of labelled rows) lets a measurement try other
    centroids (scripts/merge_rule_probe.py); the engine uses the plain mean."""
    labels = labels.copy()
    while True:
        ids, cents = centroids(raw, labels)
        if len(ids) <= keep_at_least:
            return labels
        sims = cents @ cents.T
        np.fill_diagonal(sims, -np.inf)
        a, b = np.unravel_index(int(np.argmax(sims)), sims.shape)
        if sims[a, b] < threshold:
            return labels
        labels[labels == ids[b]] = ids[a]


def relabel_by_first_appearance(labels: np.ndarray) -> np.ndarray:
    mapping: dict[int, int] = {}
    out = np.empty(len(labels), dtype=int)
    for i, label in enumerate(labels):
        out[i] = mapping.setdefault(int(label), len(mapping))
    return out
