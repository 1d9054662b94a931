"""Where a training run computes: one rule for every trainer (embedding student, segmentation)."""

from __future__ import annotations

import os

import torch


def resolve_device(name: str) -> torch.device:
    """auto = CUDA when available. On CUDA, cuBLAS needs a fixed workspace to be deterministic,
    and it reads the variable when CUDA is first used: set it before anything touches the GPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {name!r}")
    use_cuda = name == "cuda" or (name == "auto" and torch.cuda.is_available())
    if not use_cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device cuda requested but torch sees no CUDA device")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.device("cuda")


def configure_determinism(device: torch.device) -> None:
    """Deterministic kernels everywhere; on CUDA only warn where an op has none (LSTM backward
    has no guarantee flag of its own), so a GPU run is not aborted by a missing kernel."""
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
