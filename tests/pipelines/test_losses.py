"""Distillation losses: each is zero exactly when the student copies what it is meant to copy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipelines.training.losses import centered_cosine_distillation, cosine_distillation, relational_distillation


def unit(rows: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(rows, 16, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_every_distillation_loss_vanishes_on_a_perfect_copy() -> None:
    teacher = unit(8, 0)
    mean = teacher.mean(dim=0)
    assert float(cosine_distillation(teacher, teacher)) < 1e-6
    assert float(centered_cosine_distillation(teacher, teacher, mean)) < 1e-6
    assert float(relational_distillation(teacher, teacher)) == 0.0


def test_relational_loss_sees_a_rotation_as_a_copy_but_not_a_collapse() -> None:
    teacher = unit(8, 0)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(1)))
    rotated = teacher @ rotation
    # A rotation keeps every pairwise similarity (the clustering geometry) but not the embeddings.
    assert float(relational_distillation(rotated, teacher)) < 1e-10
    assert float(cosine_distillation(rotated, teacher)) > 0.1
    # A student that shrinks towards the mean makes all speakers alike: that is what it penalises.
    collapsed = F.normalize(teacher + 3 * teacher.mean(dim=0), dim=1)
    assert float(relational_distillation(collapsed, teacher)) > 0.05


def test_relational_loss_has_gradients_and_handles_a_single_crop() -> None:
    student = unit(6, 2).requires_grad_(True)
    relational_distillation(student, unit(6, 3)).backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0
    single = relational_distillation(unit(1, 4), unit(1, 5))
    assert float(single) == 0.0
