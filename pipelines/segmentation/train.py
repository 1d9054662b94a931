"""Training loop for the segmentation model, on the patterns of pipelines/training/loop.py.

Deterministic and resumable the same way: every random draw of step i comes from
`default_rng([seed, i])`, the initial weights from `torch.manual_seed(seed)` right before the
model is built, `torch.use_deterministic_algorithms`; so a checkpoint (written atomically with
the embedding trainer's `save_atomic`) holds only weights, optimiser state, step and history,
and a resumed run ends where an uninterrupted one would. Chunks are generated on the fly, so
there is no epoch: a run is a number of steps. Validation uses a fixed set of chunks built from
voices never trained on.

Not wired into `voiceflow train` yet (issue 9 gates that).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from pipelines.segmentation.data import VoicePools, librispeech_pools, make_batch, synthetic_pools
from pipelines.segmentation.model import SegmentationModel, SegmentationSpec
from pipelines.segmentation.powerset import permutation_invariant_powerset_loss
from pipelines.training.config import DataConfig, _build
from pipelines.training.loop import save_atomic
from voiceflow.simulate import ChunkConfig

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
MODEL_FORMAT = "voiceflow-segmentation-1"


@dataclass(frozen=True)
class SegDataConfig:
    source: str = "librispeech"  # "librispeech" (shared data) or "synthetic" (no files needed)
    data_root: str | None = None  # as the embedding trainer's: None = $VOICEFLOW_SHARED_DATA or ../shared/data
    train_voices: int | None = None  # None = every training-split speaker
    val_voices: int = 20
    val_chunks: int = 64
    chunk_seconds: float = 5.0
    snr_db: tuple[float, float] = (5.0, 30.0)


@dataclass(frozen=True)
class SegTrainConfig:
    name: str = "segmentation"
    seed: int = 0
    steps: int = 2000
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    torch_threads: int = 2
    checkpoint_every: int = 100
    validate_every: int = 100
    data: SegDataConfig = field(default_factory=SegDataConfig)
    model: SegmentationSpec = field(default_factory=SegmentationSpec)

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self))

    def chunk_config(self) -> ChunkConfig:
        return ChunkConfig(chunk_seconds=self.data.chunk_seconds, max_speakers=self.model.max_speakers)


def config_from_dict(values: dict[str, Any]) -> SegTrainConfig:
    """Unknown keys are errors, exactly as for the embedding trainer (same builder)."""
    return _build(SegTrainConfig, values, "")


def load_preset(name: str) -> SegTrainConfig:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise ValueError(f"unknown segmentation preset {name!r}; presets: {names}")
    return config_from_dict(yaml.safe_load(path.read_text()) or {})


def learning_rate(config: SegTrainConfig, step: int) -> float:
    """Linear warm-up then cosine decay, the embedding trainer's schedule, over `steps`."""
    warm = min(1.0, (step + 1) / max(config.warmup_steps, 1))
    return config.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step / max(config.steps, 1), 1.0)))


def voice_pools(config: SegDataConfig) -> VoicePools:
    if config.source == "synthetic":
        return synthetic_pools(config.train_voices or 16, config.val_voices)
    if config.source == "librispeech":
        root = DataConfig(data_root=config.data_root).root()
        return librispeech_pools(root / DataConfig().librispeech, config.train_voices, config.val_voices)
    raise ValueError(f"data.source must be 'librispeech' or 'synthetic', not {config.source!r}")


@dataclass(frozen=True)
class SegTrainResult:
    out_dir: Path
    model_path: Path | None  # None when stopped early (max_steps)
    steps_done: int
    seconds: float
    history: list[dict[str, Any]]


def evaluate(model: SegmentationModel, waves: torch.Tensor, labels: torch.Tensor, batch: int = 32) -> float:
    """Mean permutation-invariant powerset loss over fixed chunks."""
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for i in range(0, len(waves), batch):
            loss, _ = permutation_invariant_powerset_loss(model(waves[i : i + batch]), labels[i : i + batch])
            total += loss.item() * len(waves[i : i + batch])
    model.train()
    return total / max(len(waves), 1)


def train(
    config: SegTrainConfig,
    out_dir: Path,
    *,
    max_steps: int | None = None,
    log: Callable[[str], None] = print,
) -> SegTrainResult:
    """Train (or resume) a segmentation model into `out_dir`."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(config.torch_threads, 1))
    torch.use_deterministic_algorithms(True)

    chunk = config.chunk_config()
    pools = voice_pools(config.data)
    val_wave, val_labels = make_batch(
        pools.val, np.random.default_rng([config.seed, 999_983]), config.data.val_chunks, chunk, config.data.snr_db
    )
    val_w, val_l = torch.from_numpy(val_wave), torch.from_numpy(val_labels.astype(np.float32))

    torch.manual_seed(config.seed)
    model = SegmentationModel(config.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, history = 0, []
    ckpt_path = out_dir / CHECKPOINT
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state["config"] != config.to_dict():
            raise ValueError(f"{ckpt_path} was written with another config; use a new out dir")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history = int(state["step"]), list(state["history"])
        log(f"resuming from step {step}/{config.steps}")
    else:  # a fresh run: the untrained model's validation loss is the curve's first point
        history.append({"kind": "val", "step": 0, "val_loss": evaluate(model, val_w, val_l)})

    def checkpoint() -> None:
        state = {"config": config.to_dict(), "model": model.state_dict(), "optimizer": optimizer.state_dict()}
        save_atomic({**state, "step": step, "history": history}, ckpt_path)

    stop_at = config.steps if max_steps is None else min(config.steps, max_steps)
    while step < stop_at:
        rng = np.random.default_rng([config.seed, step])
        wave, labels = make_batch(pools.train, rng, config.batch_size, chunk, config.data.snr_db)
        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, _ = permutation_invariant_powerset_loss(
            model(torch.from_numpy(wave)), torch.from_numpy(labels.astype(np.float32))
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        step += 1
        history.append({"kind": "step", "step": step, "lr": lr, "loss": loss.item()})
        if step % config.validate_every == 0 or step == config.steps:
            history.append({"kind": "val", "step": step, "val_loss": evaluate(model, val_w, val_l)})
            log(f"step {step}: loss {loss.item():.4f} val {history[-1]['val_loss']:.4f}")
        if step % config.checkpoint_every == 0 or step == stop_at:
            checkpoint()
    seconds = time.monotonic() - started
    if step < config.steps:
        return SegTrainResult(out_dir, None, step, seconds, history)
    model_path = out_dir / MODEL
    save_atomic(
        {
            "format": MODEL_FORMAT,
            "spec": config.model.to_dict(),
            "model": model.state_dict(),
            "config": config.to_dict(),
        },
        model_path,
    )
    return SegTrainResult(out_dir, model_path, step, seconds, history)


def load_model(path: Path) -> SegmentationModel:
    """A trained model from `model.pt`, in eval mode (what export takes)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a segmentation model ({state.get('format')!r})")
    model = SegmentationModel(SegmentationSpec(**state["spec"]))
    model.load_state_dict(state["model"])
    return model.eval()
