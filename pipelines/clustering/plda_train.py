"""LDA + two-covariance PLDA, estimated in closed form from labelled embeddings (numpy only).

The result is a voiceflow.clustering.plda.PLDA: the engine applies it, this module only fits it.
1. x <- length-norm(x - mean1) * sqrt(D)
2. LDA: the generalised eigenvectors of (between, within) scatter, the `lda_dim` largest; a small
   ridge on the within scatter keeps it invertible when dimensions outnumber what varies.
3. y <- length-norm(x @ lda) * sqrt(d)
4. Two covariances of y: W within speakers, B of the speaker means (minus the share of W each
   mean still carries, W / n_s); the simultaneous diagonalisation tr W tr' = I, tr B tr' = diag(psi).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh

from voiceflow.clustering.plda import PLDA
from voiceflow.embedding import l2_normalize

MIN_PSI = 1e-4  # floor for across-speaker variances a small training set estimates at <= 0


def _scatters(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(within covariance, between covariance of the means, means [S, d], counts [S])."""
    ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.zeros((len(ids), x.shape[1]))
    np.add.at(means, inverse, x)
    means /= counts[:, None]
    centred = x - means[inverse]
    within = centred.T @ centred / len(x)
    spread = means - means.mean(axis=0)
    between = spread.T @ spread / len(ids)
    return within, between, means, counts


def train_plda(embeddings: np.ndarray, speakers: np.ndarray, lda_dim: int = 128, ridge: float = 1e-3) -> PLDA:
    """Fit LDA + PLDA on embeddings [N, D] of speakers [N] (at least two speakers, two rows each)."""
    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(speakers)
    if x.ndim != 2 or len(x) != len(labels):
        raise ValueError("embeddings must be [N, D] with one speaker label per row")
    ids, counts = np.unique(labels, return_counts=True)
    if len(ids) < 2 or counts.min() < 2:
        raise ValueError("PLDA training needs at least two speakers with two embeddings each")
    dim_in = x.shape[1]
    lda_dim = min(lda_dim, dim_in, len(ids) - 1)
    mean1 = x.mean(axis=0)
    x = l2_normalize(x - mean1) * np.sqrt(dim_in)
    within, between, _, _ = _scatters(x, labels)
    within += ridge * np.trace(within) / dim_in * np.eye(dim_in)
    _, vectors = eigh(between, within)
    lda = vectors[:, ::-1][:, :lda_dim]
    y = l2_normalize(x @ lda) * np.sqrt(lda_dim)
    mu = y.mean(axis=0)
    w, b, _, n_s = _scatters(y - mu, labels)
    w += ridge * np.trace(w) / lda_dim * np.eye(lda_dim)
    b = b - w * float(np.mean(1.0 / n_s))
    psi, v = eigh(b, w)  # v' w v = I, v' b v = diag(psi), ascending
    order = np.argsort(psi)[::-1]
    return PLDA(mean1=mean1, lda=lda, mu=mu, tr=v[:, order].T, psi=np.maximum(psi[order], MIN_PSI))
