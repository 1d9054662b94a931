"""Statistics of suite results: pooled error ratios, bootstrap intervals, paired differences.

Everything is a pure function of per-recording counts. A stratum's DER is a pooled ratio (all
errors over all reference speech, the way pyannote accumulates), so its interval resamples
*recordings* within the stratum and recomputes that ratio: the recording, not the frame, is the
unit that varies (frames of one recording are far from independent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

RESAMPLES = 1000
SEED = 0

# One number per recording (its errors, or its reference speech), in the recordings' order.
Counts: TypeAlias = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Interval:
    point: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"point": self.point, "low": self.low, "high": self.high}


def pooled_ratio(errors: Counts, totals: Counts) -> float:
    total = float(np.sum(totals))
    return float(np.sum(errors)) / total if total > 0 else 0.0


def _resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_ratio(
    errors: Counts, totals: Counts, resamples: int = RESAMPLES, seed: int = SEED, level: float = 0.95
) -> Interval:
    """Pooled errors/totals with a percentile bootstrap interval over recordings."""
    e, t = np.asarray(errors, dtype=float), np.asarray(totals, dtype=float)
    if e.shape != t.shape or e.ndim != 1:
        raise ValueError("errors and totals must be 1-D and of one length")
    point = pooled_ratio(e, t)
    if len(e) < 2:
        return Interval(point, point, point)
    idx = _resample_indices(len(e), resamples, seed)
    sums = t[idx].sum(axis=1)
    ratios = np.divide(e[idx].sum(axis=1), sums, out=np.zeros(resamples), where=sums > 0)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail])
    # a percentile interval can miss a skewed point estimate by a hair; the point is always inside
    return Interval(point, float(min(low, point)), float(max(high, point)))


def paired_bootstrap_difference(
    candidate_errors: Counts,
    baseline_errors: Counts,
    totals: Counts,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = 0.95,
) -> Interval:
    """DER(candidate) - DER(baseline) over the same recordings, resampled together (paired).

    Pairing removes what the recordings share (a hard recording is hard for both), so a
    difference can be significant even when the two systems' own intervals overlap.
    """
    c, b, t = (np.asarray(x, dtype=float) for x in (candidate_errors, baseline_errors, totals))
    if not (c.shape == b.shape == t.shape) or c.ndim != 1:
        raise ValueError("candidate, baseline and totals must be 1-D and of one length")
    # On the full set and on every resample, sum(c)/sum(t) - sum(b)/sum(t) == sum(c - b)/sum(t): the
    # difference of the pooled ratios is the pooled ratio of the per-recording differences.
    return bootstrap_ratio(c - b, t, resamples, seed, level)


def count_accuracy(hypothesis_counts: Sequence[int], reference_counts: Sequence[int]) -> dict[str, float]:
    """Share of recordings whose speaker count is exact, and within one of the truth."""
    h, r = np.asarray(hypothesis_counts), np.asarray(reference_counts)
    if h.shape != r.shape:
        raise ValueError("one hypothesis count per reference count")
    if h.size == 0:
        return {"exact": 0.0, "within_1": 0.0, "recordings": 0}
    return {
        "exact": float(np.mean(h == r)),
        "within_1": float(np.mean(np.abs(h - r) <= 1)),
        "recordings": int(h.size),
    }
