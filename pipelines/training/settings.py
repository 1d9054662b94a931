"""What every training run is configured with, whatever its task: the framework's settings.

Each task's config (config.TrainConfig, segmentation.train.SegTrainConfig) extends `RunConfig`,
so these keys mean the same in every config file and the loop (framework.py) reads them in one
place. Torch-free: the Control API checks configs against it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RunConfig:
    # Each task sets its own defaults for name, batch_size, checkpoint_every and device.
    name: str = "run"
    seed: int = 0
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    torch_threads: int = 2
    checkpoint_every: int = 100  # steps; a task may add its own (the student's epoch ends)
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda; a run may resume on another device

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON values: what checkpoints, model.pt and manifests store."""
        return dict(json.loads(json.dumps(asdict(self))))
