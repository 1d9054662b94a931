"""Cheap validation metrics for training curves (the real gate is DER, in pipelines.evaluation)."""

from __future__ import annotations

import numpy as np


def equal_error_rate(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """EER of same-vs-different-speaker cosine scores over all pairs of crops."""
    emb = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    scores = emb @ emb.T
    iu = np.triu_indices(len(labels), k=1)
    s, same = scores[iu], (labels[:, None] == labels[None, :])[iu]
    if same.all() or not same.any():
        return float("nan")
    order = np.argsort(-s, kind="stable")
    same = same[order]
    # sweep the threshold down: false rejects fall, false accepts rise; EER where they cross
    far = np.cumsum(~same) / (~same).sum()
    frr = 1.0 - np.cumsum(same) / same.sum()
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.sum(an * bn, axis=1)))
