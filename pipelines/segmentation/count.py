"""The overlap-detector task: the segmentation network trained to say how many people talk (0 / 1 / 2+).

Issue 9's fallback when full segmentation does not generalise: counting needs no speaker
identities, so there is no permutation to search; the target is the reference's per-frame
speaker count clipped at 2, and the loss a plain cross-entropy over those 3 classes.
"""

from __future__ import annotations

import numpy as np
import torch

COUNT_CLASSES = 3  # 0, 1, 2 or more speakers


def count_targets(labels: torch.Tensor) -> torch.Tensor:
    """[B, frames, speakers] 0/1 activity -> [B, frames] int64 count class (0, 1, 2+)."""
    return labels.sum(dim=-1).clamp(max=COUNT_CLASSES - 1).long()


def count_loss(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of [B, frames, 3] log-probabilities against the reference counts."""
    targets = count_targets(labels).to(log_probs.device)
    return -torch.gather(log_probs, 2, targets.unsqueeze(-1)).squeeze(-1).mean()


def count_metrics(hyp: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """hyp, ref: [N, frames] count classes. Count error rate and overlap (2+) recall/precision."""
    ov_ref, ov_hyp = ref >= 2, hyp >= 2
    return {
        "count_error": float((hyp != ref).mean()) if ref.size else 0.0,
        "overlap_recall": float((ov_ref & ov_hyp).sum() / max(int(ov_ref.sum()), 1)),
        "overlap_precision": float((ov_ref & ov_hyp).sum() / max(int(ov_hyp.sum()), 1)),
    }
