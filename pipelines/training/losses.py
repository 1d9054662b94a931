"""Losses: cosine distillation towards the teacher + additive-angular-margin speaker classification."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cosine_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean (1 - cos) between student and teacher embeddings of the same crops."""
    return (1.0 - F.cosine_similarity(student, teacher, dim=1)).mean()


def centered_cosine_distillation(student: torch.Tensor, teacher: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Mean (1 - cos) after removing the teacher's mean embedding from both sides.

    GE2E embeddings end in a ReLU, so they share a large common direction (cos ~0.68 to their
    mean): plain cosine distillation first collapses onto that mean and then barely moves (the
    first full run sat at loss 0.32 = 1 - 0.68 for 100 steps). Centring makes the speaker-specific
    part the whole target, while the plain term keeps the student in the teacher's space, so the
    engine's clustering thresholds (tuned on GE2E) still apply.
    """
    return (1.0 - F.cosine_similarity(student - mean, teacher - mean, dim=1)).mean()


def relational_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared gap between the batch's student and teacher cosine-similarity matrices.

    The engine clusters on similarities *between* windows (its thresholds were tuned on GE2E's),
    so this matches that geometry directly; per-crop cosine alone lets a student shrink towards
    the mean and make every two speakers look alike. Both inputs are unit vectors.
    """
    gap = student @ student.T - teacher @ teacher.T
    n = student.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=student.device)
    return gap[off_diagonal].pow(2).mean() if n > 1 else gap.sum() * 0.0


def sequence_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared gap between student and teacher LSTM outputs at matching steps [B, steps, H].

    The embedding is one 256-d target per 1.6 s crop; the teacher's output at every step is a
    target per 30 ms, so the student copies *how* GE2E reads the audio, not only where it ends
    up, which is what lets it generalise from a small training set to unseen meetings.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student steps {tuple(student.shape)} do not match the teacher's {tuple(teacher.shape)}")
    return (student - teacher).pow(2).mean()


class AAMSoftmax(nn.Module):
    """ArcFace-style head over the labelled speakers; only used in training, never exported.

    Distillation alone copies GE2E's geometry; the margin loss pushes speakers apart beyond it,
    which is what clustering needs.
    """

    def __init__(self, dim: int, n_classes: int, margin: float, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max(n_classes, 1), dim) * 0.01)
        self.margin = margin
        self.scale = scale

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        mask = labels >= 0
        if not bool(mask.any()):
            return embeddings.sum() * 0.0
        emb, lab = embeddings[mask], labels[mask]
        cos = F.linear(F.normalize(emb, dim=1), F.normalize(self.weight, dim=1)).clamp(-1 + 1e-7, 1 - 1e-7)
        target = torch.cos(torch.acos(cos.gather(1, lab[:, None])) + self.margin)
        logits = cos.scatter(1, lab[:, None], target) * self.scale
        return F.cross_entropy(logits, lab)


def weight_drift(params: list[torch.Tensor], anchor: list[torch.Tensor]) -> torch.Tensor:
    """Sum of squared differences between parameters and their starting values (L2-SP's penalty)."""
    if len(params) != len(anchor):
        raise ValueError(f"{len(params)} parameters against {len(anchor)} anchors")
    if not params:
        return torch.zeros(())
    return torch.stack([(p - a).pow(2).sum() for p, a in zip(params, anchor, strict=True)]).sum()
