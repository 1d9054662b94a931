"""Where training runs: device choice, and checkpoints that move between GPU and CPU machines."""

from __future__ import annotations

import pytest
import torch

from pipelines.nn.device import resolve_device
from pipelines.training.checkpoint import on_cpu, same_run
from pipelines.training.config import TrainConfig


@pytest.mark.parametrize("cuda_present", [False, True])
def test_auto_takes_cuda_only_when_torch_sees_it(monkeypatch: pytest.MonkeyPatch, cuda_present: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_present)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    device = resolve_device("auto")
    assert device.type == ("cuda" if cuda_present else "cpu")
    # cuBLAS reads its workspace setting once, at CUDA's first use: it must be set by then
    assert (torch.cuda.is_available() and "CUBLAS_WORKSPACE_CONFIG" in __import__("os").environ) == cuda_present


def test_cuda_without_a_gpu_and_unknown_devices_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        resolve_device("tpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_a_run_may_resume_on_another_device_but_not_with_another_config() -> None:
    gpu = TrainConfig(device="cuda").to_dict()
    assert same_run(gpu) == same_run(TrainConfig(device="cpu").to_dict())
    assert same_run(gpu) != same_run(TrainConfig(device="cuda", lr=0.5).to_dict())


def test_saved_weights_are_cpu_tensors_detached_from_the_graph() -> None:
    layer = torch.nn.Linear(3, 2)
    state = on_cpu(layer.state_dict(keep_vars=True))
    assert all(t.device.type == "cpu" and not t.requires_grad for t in state.values())
    assert set(state) == {"weight", "bias"}
