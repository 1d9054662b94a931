"""Spectral clustering with the speaker count found by the normalised maximum eigengap (NME-SC).

Park et al., "Auto-Tuning Spectral Clustering for Speaker Diarization Using Normalized Maximum
Eigengap" (2019): the cosine affinity is pruned to each row's p strongest neighbours, and p is
chosen to minimise p / (N * normalised max eigengap). It needs no distance threshold, which is
what makes it carry across recording conditions where one fixed cut-off does not.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.linalg import eigh

from voiceflow.embedding import l2_normalize


def _pruned_affinity(sim: np.ndarray, p: int) -> np.ndarray:
    n = len(sim)
    affinity = np.zeros_like(sim)
    top = np.argsort(-sim, axis=1)[:, :p]
    rows = np.repeat(np.arange(n), p)
    affinity[rows, top.reshape(-1)] = 1.0
    return 0.5 * (affinity + affinity.T)


def _laplacian_eigs(affinity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = affinity.copy()
    np.fill_diagonal(a, 0.0)
    degree = a.sum(axis=1)
    laplacian = np.diag(degree) - a
    values, vectors = eigh(laplacian)
    return values, vectors


def estimate_num_speakers(
    embeddings: np.ndarray, min_speakers: int = 1, max_speakers: int = 10, max_p_fraction: float = 0.25
) -> tuple[int, int]:
    """(speaker count, chosen p) by NME over p in 2..max_p_fraction*N."""
    x = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    n = len(x)
    sim = x @ x.T
    best: tuple[float, int, int] | None = None
    for p in range(2, max(3, int(max_p_fraction * n)) + 1):
        values, _ = _laplacian_eigs(_pruned_affinity(sim, min(p, n)))
        limit = min(max_speakers, n - 1)
        gaps = np.diff(values[: limit + 1])
        if gaps.size == 0:
            continue
        lo = max(min_speakers - 1, 0)
        k_index = lo + int(np.argmax(gaps[lo:])) if lo < gaps.size else gaps.size - 1
        normalized_gap = gaps[k_index] / (values[-1] + 1e-10)
        ratio = (p / n) / (normalized_gap + 1e-10)
        if best is None or ratio < best[0]:
            best = (ratio, k_index + 1, p)
    if best is None:
        return max(min_speakers, 1), 2
    return best[1], best[2]


def spectral_cluster(
    embeddings: np.ndarray,
    num_speakers: int | None = None,
    min_speakers: int = 1,
    max_speakers: int = 10,
    seed: int = 0,
) -> np.ndarray:
    x = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    n = len(x)
    if n <= 2:
        return np.zeros(n, dtype=int) if num_speakers in (None, 1) else np.arange(n)
    k, p = estimate_num_speakers(x, min_speakers, max_speakers)
    if num_speakers is not None:
        k = num_speakers
    k = int(np.clip(k, 1, n))
    if k == 1:
        return np.zeros(n, dtype=int)
    _, vectors = _laplacian_eigs(_pruned_affinity(x @ x.T, p))
    spectral = vectors[:, :k]
    rng = np.random.default_rng(seed)
    best_labels, best_inertia = None, np.inf
    for _ in range(10):
        centroids, labels = kmeans2(spectral, k, minit="++", seed=rng)
        inertia = float(((spectral - centroids[labels]) ** 2).sum())
        if inertia < best_inertia:
            best_labels, best_inertia = labels, inertia
    assert best_labels is not None
    return np.asarray(best_labels, dtype=int)
