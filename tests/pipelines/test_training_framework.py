"""The one training loop (pipelines/training/framework.py) with a toy task: what it promises every task.

A linear regression whose batches come from (seed, step) alone, like the real tasks': resume is
exact, checkpoints land where the loop and the task say, the history has the loop's shape, and the
task is closed whatever happens. No data, a second or two on one core.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pipelines.training import framework
from pipelines.training.checkpoint import CHECKPOINT, same_run
from pipelines.training.framework import Finished, StepLoss, Validation, run_training, warmup_cosine
from pipelines.training.settings import RunConfig

CONFIG = RunConfig(name="toy", lr=0.3, warmup_steps=2, torch_threads=1, checkpoint_every=5, device="cpu")
TRUE_W = torch.tensor([[1.5, -2.0, 0.5]])


class ToyTask:
    shown = ("loss", "mae")

    def __init__(self, config: RunConfig, steps: int = 12) -> None:
        self.config, self.total_steps = config, steps
        self.closed = False
        x = torch.from_numpy(np.random.default_rng(99).standard_normal((32, 3)).astype(np.float32))
        self.val_x, self.val_y = x, x @ TRUE_W.T

    def batches(self, start: int, stop: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(start, stop):
            x = torch.from_numpy(np.random.default_rng([self.config.seed, step]).standard_normal((8, 3)))
            yield x.float(), x.float() @ TRUE_W.T

    def build(self, fresh: bool) -> list[torch.nn.Parameter]:
        self.model = torch.nn.Linear(3, 1)
        return list(self.model.parameters())

    def weights(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"model": self.model.state_dict()}

    def load_weights(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])

    def val_loss(self) -> float:
        with torch.no_grad():
            return float(((self.model(self.val_x) - self.val_y) ** 2).mean())

    def first_entries(self) -> list[dict[str, Any]]:
        return [{"kind": "val", "step": 0, "val_loss": self.val_loss()}]

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> StepLoss:
        x, y = batch
        err = self.model(x) - y
        return StepLoss((err**2).mean(), {"mae": err.abs().mean()}, {"phase": "toy"})

    def validation(self, last: dict[str, Any], elapsed_s: float) -> Validation | None:
        if last["step"] % 4:
            return None
        return Validation({"kind": "val", "step": last["step"], "val_loss": self.val_loss()}, "validated")

    def checkpoint_due(self, step: int) -> bool:
        return step % 4 == 0

    def finish(self, out_dir: Path, history: list[dict[str, Any]], seconds: float) -> Finished:
        path = out_dir / "model.pt"
        torch.save(self.model.state_dict(), path)
        return Finished(path, {"val_loss": history[-1]["val_loss"]}, {"steps": self.total_steps})

    def close(self) -> None:
        self.closed = True


def run(out: Path, config: RunConfig = CONFIG, **kwargs: Any) -> tuple[framework.TrainResult, ToyTask]:
    tasks: list[ToyTask] = []

    def make(given: RunConfig, _device: torch.device, _progress: bool, _log: Callable[[str], None]) -> ToyTask:
        assert given is config  # the loop builds the task for the config it runs
        tasks.append(ToyTask(config))
        return tasks[-1]

    result = run_training(make, config, out, progress=False, log=lambda _m: None, **kwargs)
    return result, tasks[-1]


def test_a_resumed_run_ends_with_the_weights_and_history_of_an_uninterrupted_one(tmp_path: Path) -> None:
    whole, whole_task = run(tmp_path / "whole")
    first, _ = run(tmp_path / "split", max_steps=7)
    assert first.model_path is None and first.steps_done == 7 and first.total_steps == 12
    second, second_task = run(tmp_path / "split")
    assert second.model_path is not None and whole.model_path is not None
    for key, value in torch.load(whole.model_path).items():
        assert torch.equal(value, torch.load(second.model_path)[key]), key
    assert second.history == whole.history and whole_task.closed and second_task.closed
    steps = [h for h in whole.history if h["kind"] == "step"]
    assert list(steps[0]) == ["kind", "step", "phase", "lr", "loss", "mae"]  # the loop's order, tags before lr
    vals = [h for h in whole.history if h["kind"] == "val"]
    assert [h["step"] for h in vals] == [0, 4, 8, 12] and vals[-1]["val_loss"] < 0.5 * vals[0]["val_loss"]
    assert whole.metrics == {"val_loss": vals[-1]["val_loss"]}
    assert (tmp_path / "whole" / "curves.json").is_file()
    assert json.loads((tmp_path / "whole" / "train_summary.json").read_text()) == {"steps": 12}


def test_checkpoints_every_n_steps_when_the_task_asks_and_at_the_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []
    real = framework.write_checkpoint

    def spy(path: Path, config: dict[str, Any], weights: Any, optimizer: Any, step: int, history: Any) -> None:
        written.append(step)
        real(path, config, weights, optimizer, step, history)

    monkeypatch.setattr(framework, "write_checkpoint", spy)
    run(tmp_path / "a", max_steps=11)
    assert written == [4, 5, 8, 10, 11]  # every 5, the task's every 4, and where it stopped
    state = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=False)
    assert list(state) == ["config", "model", "optimizer", "step", "history"] and state["step"] == 11
    assert all(t.device.type == "cpu" for t in state["model"].values())


def test_a_checkpoint_resumes_only_under_the_same_config_less_where_it_runs(tmp_path: Path) -> None:
    run(tmp_path, max_steps=3)
    with pytest.raises(ValueError, match="another config"):
        run(tmp_path, RunConfig(**{**CONFIG.to_dict(), "lr": 0.5}), max_steps=4)
    placement = {"device": "cuda", "data": {"workers": 4, "source": "x"}}
    assert same_run(placement) == {"data": {"source": "x"}}
    assert same_run({"data": {"source": "y"}}) != same_run(placement)


class FailingTask(ToyTask):
    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> StepLoss:
        raise RuntimeError("boom")


def test_the_task_is_closed_when_a_step_fails(tmp_path: Path) -> None:
    task = FailingTask(CONFIG)
    with pytest.raises(RuntimeError, match="boom"):
        run_training(lambda *_: task, CONFIG, tmp_path, progress=False, log=lambda _m: None)
    assert task.closed


def test_the_schedule_warms_up_then_decays_to_zero() -> None:
    rates = [warmup_cosine(1.0, 4, step, 100) for step in range(101)]
    assert rates[0] == pytest.approx(0.25, rel=0.01) and rates[3] == pytest.approx(1.0, rel=0.01)
    assert all(a >= b for a, b in itertools.pairwise(rates[3:])) and rates[100] == pytest.approx(0.0)
