"""The permutation-aware powerset loss (torch); the encoding itself is the engine's `voiceflow.powerset`.

Local speakers have no identity, so the loss is taken under the permutation of the reference's
speakers that makes it smallest, chosen per chunk. With 3 speakers that is 3! = 6 candidates:
we evaluate them all exactly rather than approximating with a Hungarian match on multilabel
scores (the paper's shortcut), because 6 cross-entropies per chunk cost nothing.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from voiceflow.powerset import (
    MAX_SIMULTANEOUS,
    MAX_SPEAKERS,
    decode,
    multilabel_to_powerset,
    num_classes,
    powerset_mapping,
    powerset_to_multilabel,
)

__all__ = [
    "MAX_SIMULTANEOUS",
    "MAX_SPEAKERS",
    "decode",
    "multilabel_to_powerset",
    "num_classes",
    "permutation_invariant_powerset_loss",
    "permutation_losses",
    "powerset_mapping",
    "powerset_to_multilabel",
    "soft_activity",
    "speaker_permutations",
]


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
