"""Powerset encoding of local speaker activity and the permutation-aware powerset loss.

Plaquet & Bredin, "Powerset multi-class cross entropy loss for neural speaker diarization"
(Interspeech 2023): instead of one sigmoid per local speaker (multilabel), each frame gets one
softmax over the *sets* of active speakers. With up to 3 local speakers and at most 2 at once
there are 7 classes, in this fixed order:

    0: {}   1: {1}   2: {2}   3: {3}   4: {1,2}   5: {1,3}   6: {2,3}

Why powerset: overlap becomes a class of its own (no detection threshold to tune, and the
network cannot put "half a speaker" on a frame), at the cost of a cap on simultaneous speakers.

Local speakers have no identity, so the loss is taken under the permutation of the reference's
speakers that makes it smallest, chosen per chunk. With 3 speakers that is 3! = 6 candidates:
we evaluate them all exactly rather than approximating with a Hungarian match on multilabel
scores (the paper's shortcut), because 6 cross-entropies per chunk cost nothing.

Speakers are 0-based in code (column s of a [frames, speakers] activity matrix).
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import torch

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
    log_probs: torch.Tensor, num_speakers: int = MAX_SPEAKERS, max_simultaneous: int = MAX_SIMULTANEOUS
) -> torch.Tensor:
    """[..., frames, classes] log-probs -> [..., frames, speakers] marginal P(speaker active).

    The probability mass of every class containing the speaker; used where a per-speaker score is
    wanted (frame weights for embeddings, aggregation of overlapping chunks).
    """
    mapping = torch.tensor(powerset_mapping(num_speakers, max_simultaneous)).to(
        log_probs
    )  # copy: cached array is read-only
    return log_probs.exp() @ mapping


def speaker_permutations(num_speakers: int = MAX_SPEAKERS) -> list[tuple[int, ...]]:
    """All orderings of the reference's speakers, in itertools order (identity first).

    The order matters: among permutations with equal loss the first one wins, so ties (empty
    chunks, speakers with identical activity) resolve to the identity whenever it is optimal.
    """
    return list(itertools.permutations(range(num_speakers)))


def permutation_losses(
    log_probs: torch.Tensor, activity: torch.Tensor, max_simultaneous: int = MAX_SIMULTANEOUS
) -> torch.Tensor:
    """[B, P] mean-over-frames powerset cross-entropy of each chunk under each permutation.

    log_probs: [B, frames, classes] (log-softmax output); activity: [B, frames, S] 0/1 reference,
    S <= the model's speakers (missing speakers are silent and padded). Permutation p reorders the
    reference's speaker columns as activity[..., perm] before encoding.
    """
    batch, frames, classes = log_probs.shape
    speakers = _speakers_for(classes, max_simultaneous)
    activity = _pad_speakers(activity, speakers)
    ref = activity.detach().cpu().numpy()
    perms = speaker_permutations(speakers)
    # Encoding is integer bookkeeping, so it runs in numpy; only the gather carries gradients.
    targets = np.stack([multilabel_to_powerset(ref[..., list(p)], max_simultaneous) for p in perms], axis=1)
    index = torch.from_numpy(targets).to(log_probs.device)  # [B, P, frames]
    picked = torch.gather(log_probs.unsqueeze(1).expand(batch, len(perms), frames, classes), 3, index.unsqueeze(-1))
    return -picked.squeeze(-1).mean(dim=-1)


def permutation_invariant_powerset_loss(
    log_probs: torch.Tensor, activity: torch.Tensor, max_simultaneous: int = MAX_SIMULTANEOUS
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss over the batch, [B, S] chosen permutation per chunk).

    Each chunk takes the reference permutation with the smallest cross-entropy (first on ties).
    The gradient flows through the chosen permutation's loss only, as in the paper.
    """
    losses = permutation_losses(log_probs, activity, max_simultaneous)
    best = torch.argmin(losses, dim=1)  # torch returns the first minimum: deterministic ties
    perms = torch.tensor(speaker_permutations(_speakers_for(log_probs.shape[-1], max_simultaneous)))
    chosen = losses.gather(1, best.unsqueeze(1)).squeeze(1)
    return chosen.mean(), perms[best.cpu()]


def _speakers_for(classes: int, max_simultaneous: int) -> int:
    for speakers in range(1, 9):
        if speakers >= max_simultaneous and num_classes(speakers, max_simultaneous) == classes:
            return speakers
    raise ValueError(f"{classes} classes is no powerset with at most {max_simultaneous} simultaneous speakers")


def _pad_speakers(activity: torch.Tensor, speakers: int) -> torch.Tensor:
    present = activity.shape[-1]
    if present > speakers:
        raise ValueError(f"reference has {present} speakers; the powerset holds {speakers}")
    return torch.nn.functional.pad(activity, (0, speakers - present)) if present < speakers else activity
