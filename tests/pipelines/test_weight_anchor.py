"""loss.anchor_weight (L2-SP): fine-tuning pulled back towards the weights it started from."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pipelines.training.config import config_from_dict, load_preset
from pipelines.training.loop import check_anchor
from pipelines.training.losses import weight_drift


def test_drift_is_the_sum_of_squared_steps_away_from_the_anchor() -> None:
    anchor = [torch.tensor([1.0, -2.0]), torch.tensor([[0.5]])]
    params = [a.clone().requires_grad_(True) for a in anchor]
    assert weight_drift(params, anchor).item() == 0.0
    with torch.no_grad():
        params[0] += torch.tensor([0.5, 0.0])
        params[1] -= 2.0
    drift = weight_drift(params, anchor)
    assert drift.item() == pytest.approx(0.25 + 4.0)
    drift.backward()
    torch.testing.assert_close(params[0].grad, torch.tensor([1.0, 0.0]))  # 2 (theta - anchor)
    torch.testing.assert_close(params[1].grad, torch.tensor([[-4.0]]))
    assert weight_drift([], []).item() == 0.0


def test_parameters_and_anchors_must_pair_up() -> None:
    with pytest.raises(ValueError, match="anchors"):
        weight_drift([torch.zeros(2)], [])


@pytest.mark.parametrize(
    ("weight", "init", "error"),
    [
        (-1e-4, "teacher", ">= 0"),
        (float("nan"), "teacher", ">= 0"),
        (float("inf"), "teacher", ">= 0"),
        (1e-4, "random", "init 'teacher'"),
    ],
)
def test_an_anchor_the_loop_cannot_use_is_refused(weight: float, init: str, error: str) -> None:
    base = load_preset("full")
    config = replace(base, loss=replace(base.loss, anchor_weight=weight), student=replace(base.student, init=init))
    with pytest.raises(ValueError, match=error):
        check_anchor(config)


def test_no_anchor_or_a_teacher_anchor_is_accepted() -> None:
    check_anchor(load_preset("tiny"))
    base = load_preset("full")
    check_anchor(replace(base, loss=replace(base.loss, anchor_weight=1e-4)))


def test_train_refuses_an_anchor_without_a_teacher_start_before_loading_any_data(tmp_path: Path) -> None:
    from pipelines.training.loop import train

    config = config_from_dict({"data": {"data_root": str(tmp_path / "absent")}, "loss": {"anchor_weight": 0.1}})
    with pytest.raises(ValueError, match="init 'teacher'"):  # not a missing-file error
        train(config, tmp_path / "out", progress=False, log=lambda _m: None)
