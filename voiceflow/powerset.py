"""Powerset encoding of local speaker activity (numpy only: the engine decodes with it, training encodes).

Plaquet & Bredin, "Powerset multi-class cross entropy loss for neural speaker diarization"
(Interspeech 2023): instead of one sigmoid per local speaker (multilabel), each frame gets one
softmax over the *sets* of active speakers. With up to 3 local speakers and at most 2 at once
there are 7 classes, in this fixed order:

    0: {}   1: {1}   2: {2}   3: {3}   4: {1,2}   5: {1,3}   6: {2,3}

Why powerset: overlap becomes a class of its own (no detection threshold to tune, and the
network cannot put "half a speaker" on a frame), at the cost of a cap on simultaneous speakers.
Speakers are 0-based in code (column s of a [frames, speakers] activity matrix). The loss lives
with the training code (pipelines/segmentation/powerset.py).
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np

MAX_SPEAKERS = 3
MAX_SIMULTANEOUS = 2


@cache
def _mapping(num_speakers: int, max_simultaneous: int) -> np.ndarray:
    sets = [c for k in range(max_simultaneous + 1) for c in itertools.combinations(range(num_speakers), k)]
    mapping = np.zeros((len(sets), num_speakers), dtype=np.int64)
    for index, active in enumerate(sets):
        mapping[index, list(active)] = 1
    mapping.setflags(write=False)  # cached and shared: nobody may edit it in place
    return mapping


def powerset_mapping(num_speakers: int = MAX_SPEAKERS, max_simultaneous: int = MAX_SIMULTANEOUS) -> np.ndarray:
    """[classes, speakers] 0/1 matrix: row c lists the speakers active in class c.

    Classes are ordered by set size, then lexicographically (itertools.combinations order).
    """
    if num_speakers < 1 or not 0 <= max_simultaneous <= num_speakers:
        raise ValueError(
            f"need 1 <= speakers and 0 <= simultaneous <= speakers, got {num_speakers}, {max_simultaneous}"
        )
    return _mapping(num_speakers, max_simultaneous)


def num_classes(num_speakers: int = MAX_SPEAKERS, max_simultaneous: int = MAX_SIMULTANEOUS) -> int:
    return int(powerset_mapping(num_speakers, max_simultaneous).shape[0])


@cache
def _bitmask_to_class(num_speakers: int, max_simultaneous: int) -> np.ndarray:
    # -1 marks speaker sets the powerset cannot represent (too many speakers at once).
    mapping = _mapping(num_speakers, max_simultaneous)
    table = np.full(2**num_speakers, -1, dtype=np.int64)
    table[mapping @ (1 << np.arange(num_speakers))] = np.arange(mapping.shape[0])
    table.setflags(write=False)
    return table


def multilabel_to_powerset(activity: np.ndarray, max_simultaneous: int = MAX_SIMULTANEOUS) -> np.ndarray:
    """[..., frames, speakers] 0/1 activity -> [..., frames] int64 class indices.

    Raises ValueError on a frame with more than `max_simultaneous` active speakers: silently
    folding it into some 2-speaker class would teach the network a wrong answer.
    """
    activity = np.asarray(activity)
    num_speakers = activity.shape[-1]
    bits = (activity > 0).astype(np.int64) @ (1 << np.arange(num_speakers, dtype=np.int64))
    classes = _bitmask_to_class(num_speakers, max_simultaneous)[bits]
    if np.any(classes < 0):
        raise ValueError(f"a frame has more than {max_simultaneous} active speakers")
    return classes


def powerset_to_multilabel(
    classes: np.ndarray, num_speakers: int = MAX_SPEAKERS, max_simultaneous: int = MAX_SIMULTANEOUS
) -> np.ndarray:
    """[..., frames] class indices -> [..., frames, speakers] 0/1 int64 activity."""
    return powerset_mapping(num_speakers, max_simultaneous)[np.asarray(classes)]


def decode(
    log_probs: np.ndarray, num_speakers: int = MAX_SPEAKERS, max_simultaneous: int = MAX_SIMULTANEOUS
) -> np.ndarray:
    """Hard decoding: [..., frames, classes] scores -> [..., frames, speakers] 0/1 (argmax class)."""
    return powerset_to_multilabel(np.argmax(log_probs, axis=-1), num_speakers, max_simultaneous)


def soft_activity(
    log_probs: np.ndarray, num_speakers: int = MAX_SPEAKERS, max_simultaneous: int = MAX_SIMULTANEOUS
) -> np.ndarray:
    """[..., frames, classes] log-probs -> [..., frames, speakers] marginal P(speaker active)."""
    return np.exp(log_probs) @ powerset_mapping(num_speakers, max_simultaneous).astype(np.float32)
