"""NME-SC: spectral clustering with the speaker count from the normalised maximum eigengap.

Park, Han, Kumar, Narayanan, "Auto-Tuning Spectral Clustering for Speaker Diarization Using
Normalized Maximum Eigengap" (IEEE SPL 2019), as in NeMo's speaker clustering:
1. cosine affinity of the (recording-centred) embeddings;
2. each row keeps only its p strongest neighbours (binarised), then A = (A + A') / 2;
3. for each p of a search grid, the unnormalised Laplacian's eigengaps give a count k(p) and
   r(p) = (p / N) / (max gap / largest eigenvalue); the p with the smallest r wins: the sparsest
   graph whose cluster structure is still clear;
4. k-means on the k smallest eigenvectors of that Laplacian.
No distance threshold is involved, which is why it carries across channels where one fixed
cut-off does not. Long recordings are clustered on an even subsample of windows (eigh is cubic);
every window then goes to the nearest cluster centroid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.linalg import eigh

from voiceflow.clustering.labels import centroids_of, relabel_by_first_appearance
from voiceflow.embedding import l2_normalize


@dataclass(frozen=True)
class NMESCConfig:
    max_speakers: int = 10  # eigengaps searched (the user's max_speakers lowers it)
    max_p_fraction: float = 0.25  # p is searched in 2..fraction * N (NeMo's max_rp_threshold)
    p_steps: int = 12  # grid points over that range (NeMo's sparse_search_volume)
    center: bool = True  # subtract the recording mean first (the channel every window shares)
    max_windows: int = 300  # cluster an even subsample of at most this many windows (eigh is cubic)
    kmeans_restarts: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_speakers < 1 or self.p_steps < 1 or self.max_windows < 4 or self.kmeans_restarts < 1:
            raise ValueError("NME-SC max_speakers, p_steps, kmeans_restarts >= 1 and max_windows >= 4 are required")
        if not 0.0 < self.max_p_fraction <= 1.0:
            raise ValueError("NME-SC max_p_fraction must be in (0, 1]")
        if self.seed < 0:  # numpy's generator refuses it, at the first recording clustered
            raise ValueError("NME-SC seed must be >= 0")


def pruned_affinity(sim: np.ndarray, p: int) -> np.ndarray:
    """Each row's p most similar rows (itself included) set to 1, the rest 0; symmetrised."""
    n = len(sim)
    p = min(p, n)
    affinity = np.zeros_like(sim)
    top = np.argpartition(-sim, p - 1, axis=1)[:, :p]
    affinity[np.repeat(np.arange(n), p), top.reshape(-1)] = 1.0
    return 0.5 * (affinity + affinity.T)


def laplacian(affinity: np.ndarray) -> np.ndarray:
    """The unnormalised Laplacian D - A of an affinity without self-loops."""
    a = affinity.copy()
    np.fill_diagonal(a, 0.0)
    return np.diag(a.sum(axis=1)) - a


def laplacian_eigs(affinity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending eigenvalues and eigenvectors of the Laplacian."""
    values, vectors = eigh(laplacian(affinity))
    return values, vectors


def p_grid(n: int, config: NMESCConfig) -> list[int]:
    top = max(2, int(np.ceil(config.max_p_fraction * n)))
    return sorted({round(p) for p in np.linspace(2, top, min(config.p_steps, top - 1))})


def eigengap_count(values: np.ndarray, lo: int, hi: int) -> tuple[int, float]:
    """(k in lo..hi at the largest eigengap, that gap over the largest eigenvalue)."""
    gaps = np.diff(values[: hi + 1])
    lo = min(lo, len(gaps))
    k = lo + int(np.argmax(gaps[lo - 1 :])) if len(gaps) else 1
    return k, float(gaps[k - 1] / (values[-1] + 1e-10)) if len(gaps) else 0.0


def estimate_num_speakers(
    embeddings: np.ndarray,
    min_speakers: int = 1,
    max_speakers: int = 10,
    config: NMESCConfig = NMESCConfig(),
) -> tuple[int, int]:
    """(speaker count, chosen p) by the NME criterion over the p grid."""
    x = _unit(embeddings, config.center)
    n = len(x)
    if n < 3:
        return max(min_speakers, 1), 2
    sim = x @ x.T
    hi = max(min(max_speakers, config.max_speakers, n - 1), 1)
    lo = min(max(min_speakers, 1), hi)
    best: tuple[float, int, int] | None = None
    for p in p_grid(n, config):
        values = eigh(laplacian(pruned_affinity(sim, p)), eigvals_only=True)  # the count needs no vectors
        k, gap = eigengap_count(values, lo, hi)
        ratio = (p / n) / (gap + 1e-10)
        if best is None or ratio < best[0]:
            best = (ratio, k, p)
    assert best is not None
    return best[1], best[2]


def spectral_cluster(
    embeddings: np.ndarray,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    config: NMESCConfig = NMESCConfig(),
) -> np.ndarray:
    """NME-SC labels (by first appearance); `num_speakers` skips the count estimate."""
    x = _unit(embeddings, config.center)
    n = len(x)
    if n <= 2:
        return np.zeros(n, dtype=int) if num_speakers in (None, 1) else np.arange(n)
    sample = np.unique(np.linspace(0, n - 1, min(n, config.max_windows)).round().astype(int))
    xs = x[sample]
    lo, hi = min_speakers or 1, max_speakers or config.max_speakers
    k, p = estimate_num_speakers(xs, lo, hi, replace(config, center=False))
    if num_speakers is not None:
        k = num_speakers
    k = int(np.clip(k, 1, len(xs)))
    if k == 1:
        return np.zeros(n, dtype=int)
    _, vectors = laplacian_eigs(pruned_affinity(xs @ xs.T, p))
    spectral = vectors[:, :k]
    rng = np.random.default_rng(config.seed)
    best_labels, best_inertia = np.zeros(len(xs), dtype=int), np.inf
    for _ in range(config.kmeans_restarts):
        centroids, labels = kmeans2(spectral, k, minit="++", seed=rng)
        inertia = float(((spectral - centroids[labels]) ** 2).sum())
        if inertia < best_inertia:
            best_labels, best_inertia = labels, inertia
    full = np.zeros(n, dtype=int)
    full[sample] = best_labels
    if len(sample) < n:
        # the windows left out join their nearest cluster (the sampled ones keep their label)
        ids, cents = centroids_of(xs, best_labels)
        rest = np.setdiff1d(np.arange(n), sample)
        full[rest] = ids[np.argmax(x[rest] @ cents.T, axis=1)]
    return relabel_by_first_appearance(full)


def _unit(embeddings: np.ndarray, center: bool) -> np.ndarray:
    raw = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    return l2_normalize(raw - raw.mean(axis=0)) if center and len(raw) > 1 else raw


__all__ = ["NMESCConfig", "estimate_num_speakers", "spectral_cluster"]
