"""Training loop for the segmentation model, on the patterns of pipelines/training/loop.py.

Deterministic and resumable the same way: every random draw of step i comes from
`default_rng([seed, i])`, the initial weights from `torch.manual_seed(seed)` right before the
model is built, `torch.use_deterministic_algorithms`; so a checkpoint (written atomically with
the embedding trainer's `save_atomic`) holds only weights, optimiser state, step and history,
and a resumed run ends where an uninterrupted one would. Chunks are generated on the fly, so
there is no epoch: a run is a number of steps. Batches may be built by worker processes
(`data.workers`, `loader.py`) without changing them. Validation uses a fixed set of chunks
built from LibriSpeech voices never trained on (no AMI, no augmentation: a stable yardstick).

`voiceflow train --preset segmentation-tiny|segmentation-full` (pipelines/cli.py) runs this.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from pipelines.nn.device import configure_determinism, resolve_device
from pipelines.segmentation.augment import SegAugmentConfig, load_chunk_assets
from pipelines.segmentation.count import count_loss, count_metrics, count_targets
from pipelines.segmentation.data import AmiCorpus, VoicePools, librispeech_pools, load_ami, make_batch, synthetic_pools
from pipelines.segmentation.loader import BatchMaker, BatchStream
from pipelines.segmentation.model import SegmentationModel, SegmentationSpec
from pipelines.segmentation.powerset import decode, permutation_invariant_powerset_loss
from pipelines.training.config import DataConfig, build_config, read_mapping
from pipelines.training.config import preset_names as training_preset_names
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
    snr_db: tuple[float, float] = (5.0, 30.0)  # the white noise floor every chunk gets
    p_ami: float = 0.0  # probability that a training chunk is a crop of a real AMI meeting
    ami_files: list[str] = field(default_factory=lambda: [f"trn{i:02d}" for i in range(10)])  # never dev*
    workers: int = 0  # batch-building processes (0 = in the training process); batches are the same


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
    device: str = "auto"  # auto (cuda when available) | cpu | cuda
    # A trained model.pt whose weights start this run (every tensor of matching name and shape:
    # an overlap detector starts from the segmentation network, all but its last layer).
    init_from: str | None = None
    data: SegDataConfig = field(default_factory=SegDataConfig)
    augment: SegAugmentConfig = field(default_factory=SegAugmentConfig)
    model: SegmentationSpec = field(default_factory=SegmentationSpec)

    def to_dict(self) -> dict[str, Any]:
        return dict(json.loads(json.dumps(asdict(self))))

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: everything but where it runs (device,
        workers), which may change between an interruption and the resume."""
        values = self.to_dict()
        values.pop("device")
        values["data"].pop("workers")
        return values

    def chunk_config(self) -> ChunkConfig:
        return ChunkConfig(chunk_seconds=self.data.chunk_seconds, max_speakers=self.model.max_speakers)


def config_from_dict(values: dict[str, Any]) -> SegTrainConfig:
    """Unknown keys are errors, exactly as for the embedding trainer (same builder). A top-level
    `kind: segmentation` (what routes a `voiceflow train --config` file here) is accepted."""
    values = dict(values)
    kind = values.pop("kind", "segmentation")
    if kind != "segmentation":
        raise ValueError(f"kind {kind!r} is not a segmentation config")
    return build_config(SegTrainConfig, values)


def load_config(path: Path) -> SegTrainConfig:
    return config_from_dict(read_mapping(path))


def preset_names() -> list[str]:
    return training_preset_names(PRESETS_DIR)


def load_preset(name: str) -> SegTrainConfig:
    """`tiny` or `full` (the CLI's `segmentation-tiny` / `segmentation-full`)."""
    path = PRESETS_DIR / f"{name.removeprefix('segmentation-')}.yaml"
    if not path.exists():
        raise ValueError(f"unknown segmentation preset {name!r}; presets: {', '.join(preset_names())}")
    config = load_config(path)
    if config.init_from and not Path(config.init_from).is_absolute():
        # A preset's starting weights ship with the package (pipelines/segmentation/weights/).
        config = replace(config, init_from=str(PRESETS_DIR.parent / config.init_from))
    return config


def is_segmentation_config(path: Path) -> bool:
    """True when a config file says `kind: segmentation` (the CLI's dispatch rule)."""
    values = yaml.safe_load(Path(path).read_text())
    return isinstance(values, dict) and values.get("kind") == "segmentation"


def with_overrides(
    config: SegTrainConfig, data_root: str | None = None, workers: int | None = None, **top: Any
) -> SegTrainConfig:
    """Command-line overrides (None = keep the config's value)."""
    config = replace(config, **{k: v for k, v in top.items() if v is not None})
    data: dict[str, Any] = {k: v for k, v in {"data_root": data_root, "workers": workers}.items() if v is not None}
    return replace(config, data=replace(config.data, **data)) if data else config


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


def ami_corpus(config: SegDataConfig) -> AmiCorpus | None:
    if config.p_ami <= 0:
        return None
    return load_ami(DataConfig(data_root=config.data_root).root() / DataConfig().ami, list(config.ami_files))


def batch_maker(config: SegTrainConfig, pools: VoicePools | None = None) -> BatchMaker:
    """Everything training batches are drawn from (voices, AMI, augmentation files) for `config`."""
    pools = pools if pools is not None else voice_pools(config.data)
    assets = load_chunk_assets(config.augment, DataConfig(data_root=config.data.data_root).root() / "augmentation")
    return BatchMaker(
        seed=config.seed,
        batch_size=config.batch_size,
        pool=pools.train,
        chunk=config.chunk_config(),
        snr_db=config.data.snr_db,
        augment=config.augment,
        assets=assets,
        ami=ami_corpus(config.data),
        p_ami=config.data.p_ami,
    )


@dataclass(frozen=True)
class SegTrainResult:
    out_dir: Path
    model_path: Path | None  # None when stopped early (max_steps)
    steps_done: int
    seconds: float
    history: list[dict[str, Any]]


def frame_metrics(hyp: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Frame-level scores of hard decisions `hyp` against `ref`, both [N, frames, speakers] 0/1 and
    already aligned (ref permuted to the model's speaker order).

    seg_error: (missed + false alarm + confused speaker-frames) / reference speaker-frames — a
    DER on 20 ms frames without collar, the number the engine's DER inherits from this model.
    Overlap recall/precision: of frames with >= 2 speakers in the reference / in the output;
    overlap is what this model exists to find, and the loss barely weighs its rare frames.
    """
    n_ref, n_hyp = ref.sum(-1), hyp.sum(-1)
    correct = (ref & hyp).sum(-1)
    ov_ref, ov_hyp = n_ref >= 2, n_hyp >= 2
    return {
        "seg_error": float((np.maximum(n_ref, n_hyp) - correct).sum() / max(int(n_ref.sum()), 1)),
        "overlap_recall": float((ov_ref & ov_hyp).sum() / max(int(ov_ref.sum()), 1)),
        "overlap_precision": float((ov_ref & ov_hyp).sum() / max(int(ov_hyp.sum()), 1)),
    }


def task_loss(model: SegmentationModel, log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training loss of the model's task (powerset: permutation-invariant; count: plain CE)."""
    if model.spec.task == "count":
        return count_loss(log_probs, labels)
    loss, _ = permutation_invariant_powerset_loss(log_probs, labels)
    return loss


def score_batch(
    model: SegmentationModel, log_probs: torch.Tensor, ref: torch.Tensor
) -> tuple[float, np.ndarray, np.ndarray]:
    """(loss, hard decisions, reference aligned to them) of one validation batch, for the model's task.

    Powerset: the argmax class decoded, the reference permuted as the loss chose per chunk.
    Count: the argmax count class against the clipped reference count.
    """
    if model.spec.task == "count":
        return (
            count_loss(log_probs, ref).item(),
            log_probs.argmax(dim=-1).cpu().numpy(),
            count_targets(ref).cpu().numpy(),
        )
    loss, perms = permutation_invariant_powerset_loss(log_probs, ref)
    speakers = model.spec.max_speakers
    ref_np = ref.cpu().numpy().astype(np.int64)
    ref_np = np.pad(ref_np, ((0, 0), (0, 0), (0, speakers - ref_np.shape[-1])))
    aligned = np.stack([r[:, list(p)] for r, p in zip(ref_np, perms.tolist(), strict=True)])
    hyp = decode(log_probs.cpu().numpy(), speakers, model.spec.max_simultaneous).astype(np.int64)
    return loss.item(), hyp, aligned


def evaluate(model: SegmentationModel, waves: torch.Tensor, labels: torch.Tensor, batch: int = 32) -> dict[str, float]:
    """Validation loss and frame scores over fixed chunks: `frame_metrics` for the segmentation
    network, `count_metrics` for the overlap detector."""
    model.eval()
    device = next(model.parameters()).device
    total, hyps, refs = 0.0, [], []
    with torch.inference_mode():
        for i in range(0, len(waves), batch):
            wave, ref = waves[i : i + batch].to(device), labels[i : i + batch].to(device)
            loss, hyp, aligned = score_batch(model, model(wave), ref)
            total += loss * len(wave)
            hyps.append(hyp)
            refs.append(aligned)
    model.train()
    metrics = {"val_loss": total / max(len(waves), 1)}
    if hyps:
        scorer = count_metrics if model.spec.task == "count" else frame_metrics
        metrics.update({f"val_{k}": v for k, v in scorer(np.concatenate(hyps), np.concatenate(refs)).items()})
    return metrics


def initialise_from(model: SegmentationModel, path: Path) -> list[str]:
    """Copy every tensor of `path`'s model.pt whose name and shape match; returns what was left out."""
    if not path.is_file():
        raise ValueError(f"init_from: {path}: no such model file")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("format") != MODEL_FORMAT:
        raise ValueError(f"init_from: {path} is not a segmentation model ({state.get('format')!r})")
    own = model.state_dict()
    taken = {k: v for k, v in state["model"].items() if k in own and own[k].shape == v.shape}
    model.load_state_dict({**own, **taken})
    return [f"kept fresh: {k}" for k in own if k not in taken] or ["all tensors"]


def train(
    config: SegTrainConfig,
    out_dir: Path,
    *,
    max_steps: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> SegTrainResult:
    """Train (or resume) a segmentation model into `out_dir`.

    `max_steps` stops after that many steps with a checkpoint written, as if interrupted there.
    """
    from tqdm import tqdm

    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(config.torch_threads, 1))
    device = resolve_device(config.device)
    configure_determinism(device)

    chunk = config.chunk_config()
    pools = voice_pools(config.data)
    maker = batch_maker(config, pools)
    val_wave, val_labels = make_batch(
        pools.val, np.random.default_rng([config.seed, 999_983]), config.data.val_chunks, chunk, config.data.snr_db
    )
    val_w, val_l = torch.from_numpy(val_wave), torch.from_numpy(val_labels.astype(np.float32))

    ckpt_path = out_dir / CHECKPOINT
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False) if ckpt_path.exists() else None
    if state is not None and _identity(state["config"]) != config.identity():
        raise ValueError(f"{ckpt_path} was written with another config; use a new out dir or --restart")
    step = int(state["step"]) if state is not None else 0
    stop_at = config.steps if max_steps is None else min(config.steps, max_steps)
    # Workers start here (from a clean forkserver process: they never see the model or CUDA).
    stream = BatchStream(maker, step, stop_at, workers=config.data.workers)

    torch.manual_seed(config.seed)
    model = SegmentationModel(config.model).train().to(device)
    if config.init_from and state is None:
        log(f"initialised from {config.init_from}: {', '.join(initialise_from(model, Path(config.init_from)))}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, Any]] = []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = list(state["history"])
        log(f"resuming from step {step}/{config.steps}")
    else:  # a fresh run: the untrained model's validation scores are the curves' first point
        history.append({"kind": "val", "step": 0, **evaluate(model, val_w, val_l)})

    def checkpoint() -> None:
        state = {"config": config.to_dict(), "model": model.state_dict(), "optimizer": optimizer.state_dict()}
        save_atomic({**state, "step": step, "history": history}, ckpt_path)

    bar = tqdm(total=config.steps, initial=step, desc=config.name, unit="step", disable=not progress)
    try:
        for wave, labels in stream:
            lr = learning_rate(config, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            log_probs = model(torch.from_numpy(wave).to(device))
            loss = task_loss(model, log_probs, torch.from_numpy(labels.astype(np.float32)).to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            step += 1
            history.append({"kind": "step", "step": step, "lr": lr, "loss": loss.item()})
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
            if step % config.validate_every == 0 or step == config.steps:
                history.append({"kind": "val", "step": step, **evaluate(model, val_w, val_l)})
                scores = " ".join(f"{k} {v:.4f}" for k, v in history[-1].items() if k.startswith("val_"))
                (bar.write if progress else log)(f"step {step}: loss {loss.item():.4f} {scores}")
            if step % config.checkpoint_every == 0 or step == stop_at:
                checkpoint()
    finally:
        stream.close()
        bar.close()
    seconds = time.monotonic() - started
    if step < config.steps:
        log(f"stopped at step {step}/{config.steps}; rerun the same command to resume")
        return SegTrainResult(out_dir, None, step, seconds, history)
    from pipelines.training.curves import write_curves

    write_curves(history, out_dir)
    last: dict[str, Any] = next((h for h in reversed(history) if h["kind"] == "val"), {})
    metrics = {k: float(v) for k, v in last.items() if k.startswith("val_")}
    model_path = out_dir / MODEL
    save_atomic(
        {
            "format": MODEL_FORMAT,
            "spec": config.model.to_dict(),
            "model": {k: v.cpu() for k, v in model.state_dict().items()},
            "config": config.to_dict(),
            "metrics": metrics,
            "step": step,
        },
        model_path,
    )
    summary = {"steps": step, "seconds": round(seconds, 1), "device": str(device), **metrics}
    (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return SegTrainResult(out_dir, model_path, step, seconds, history)


def _identity(stored: dict[str, Any]) -> dict[str, Any]:
    """`SegTrainConfig.identity` of a config dict read from a checkpoint."""
    values = json.loads(json.dumps(stored))
    values.pop("device", None)
    values.get("data", {}).pop("workers", None)
    return dict(values)


def load_model(path: Path) -> SegmentationModel:
    """A trained model from `model.pt`, in eval mode (what export takes)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a segmentation model ({state.get('format')!r})")
    model = SegmentationModel(SegmentationSpec(**state["spec"]))
    model.load_state_dict(state["model"])
    return model.eval()
