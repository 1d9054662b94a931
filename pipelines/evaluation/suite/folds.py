"""K-fold cross-validation by recording: a setting is chosen on the other folds, reported on its own.

Used for every tuned number the suite reports (the naive baseline's threshold, on the simulated
recordings and on the 12 AMI excerpts alike), so no figure is ever measured on the recordings it
was chosen on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

import numpy as np

from pipelines.evaluation.suite.stats import pooled_ratio

C = TypeVar("C")


class FoldedItem(Protocol):
    """One scored item of the suite: its uri, the recording it belongs to, and that recording's fold."""

    uri: str
    recording: str
    fold: int


def assign_folds(groups: Mapping[str, Sequence[str]], k: int, seed: int = 0) -> dict[str, int]:
    """uri -> fold 0..k-1. Within each group (a stratum) the uris are shuffled and dealt round
    robin, continuing where the previous group stopped, so every fold gets a share of every
    stratum and fold sizes differ by at most one."""
    if k < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    rng = np.random.default_rng(seed)
    folds: dict[str, int] = {}
    dealt = 0
    for name in sorted(groups):
        uris = sorted(groups[name])
        for i in rng.permutation(len(uris)):
            if uris[i] in folds:
                raise ValueError(f"{uris[i]} is in more than one group")
            folds[uris[i]] = dealt % k
            dealt += 1
    return folds


def tuning_set(folds: Mapping[str, int], held_out: int) -> list[str]:
    """The uris a setting for fold `held_out` may be chosen on: every other fold's."""
    return sorted(u for u, f in folds.items() if f != held_out)


def cross_validate(
    folds: Mapping[str, int],
    candidates: Sequence[C],
    loss: Callable[[C, list[str]], float],
) -> dict[int, C]:
    """For each fold, the candidate with the lowest `loss(candidate, tuning uris)` over the other
    folds (ties: the earlier candidate). Report fold f's recordings with the returned choice[f]."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    chosen: dict[int, C] = {}
    for fold in sorted(set(folds.values())):
        uris = tuning_set(folds, fold)
        losses = [loss(c, uris) for c in candidates]
        chosen[fold] = candidates[int(np.argmin(losses))]
    return chosen


def pooled_loss(
    items: Iterable[FoldedItem], counts: Callable[[C, str], tuple[float, float]]
) -> tuple[dict[str, int], Callable[[C, list[str]], float]]:
    """(fold of each recording, loss) for `cross_validate` over recordings: a candidate's loss on a
    set of recordings is the pooled error ratio of their items, from `counts(candidate, uri)` =
    (error, total) of one item (a recording may hold several items, e.g. phase copies)."""
    by_recording: dict[str, list[str]] = {}
    fold_of: dict[str, int] = {}
    for item in items:
        by_recording.setdefault(item.recording, []).append(item.uri)
        fold_of[item.recording] = item.fold

    def loss(candidate: C, recordings: list[str]) -> float:
        pairs = [counts(candidate, uri) for recording in recordings for uri in by_recording[recording]]
        return pooled_ratio([error for error, _ in pairs], [total for _, total in pairs])

    return fold_of, loss
