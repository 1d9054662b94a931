"""The segmentation model's task in the training framework (pipelines/training/framework.py).

Its config, data, network and loss. Every random draw of step i comes from `default_rng([seed,
i])`, so the framework's checkpoint holds only weights, optimiser state, step and history, and a
resumed run ends where an uninterrupted one would. Chunks are generated on the fly, so there is
no epoch: a run is a number of steps. Batches may be built by worker processes (`data.workers`,
`loader.py`) without changing them. Validation uses a fixed set of chunks built from LibriSpeech
voices never trained on (no AMI, no augmentation: a stable yardstick).

`voiceflow train --preset segmentation-tiny|segmentation-full`, or a `--config` with `kind:
segmentation` (pipelines/training/presets.py), runs this.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.segmentation.augment import load_chunk_assets
from pipelines.segmentation.config import SegDataConfig, SegTrainConfig
from pipelines.segmentation.count import count_loss, count_metrics, count_targets
from pipelines.segmentation.data import AmiCorpus, VoicePools, librispeech_pools, load_ami, make_batch, synthetic_pools
from pipelines.segmentation.loader import BatchMaker, BatchStream
from pipelines.segmentation.model import SegmentationModel, SegmentationSpec
from pipelines.segmentation.powerset import decode, permutation_invariant_powerset_loss
from pipelines.segmentation.turn_taking import rttm_turn_taking
from pipelines.simulation import TurnTakingConfig
from pipelines.training.checkpoint import MODEL, write_model
from pipelines.training.config import DataConfig
from pipelines.training.framework import Finished, StepLoss, Validation, run_training

MODEL_FORMAT = "voiceflow-segmentation-1"


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


def training_turn_taking(config: SegDataConfig) -> TurnTakingConfig:
    """data.turn_taking resolved: the stand-ins, or the AMI training excerpts' measured gaps."""
    if config.turn_taking == "ami":
        return rttm_turn_taking(DataConfig(data_root=config.data_root).root() / DataConfig().ami / "train.rttm")[0]
    return TurnTakingConfig()


def batch_maker(config: SegTrainConfig, pools: VoicePools | None = None) -> BatchMaker:
    """Everything training batches are drawn from (voices, AMI, augmentation files) for `config`."""
    pools = pools if pools is not None else voice_pools(config.data)
    assets = load_chunk_assets(config.augment, DataConfig(data_root=config.data.data_root).root() / "augmentation")
    return BatchMaker(
        seed=config.seed,
        batch_size=config.batch_size,
        pool=pools.train,
        chunk=config.training_chunk_config(training_turn_taking(config.data)),
        snr_db=config.data.snr_db,
        augment=config.augment,
        assets=assets,
        ami=ami_corpus(config.data),
        p_ami=config.data.p_ami,
    )


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


class SegmentationTask:
    """The segmentation network (or the overlap detector, `model.task` "count") as a task of the
    training framework: chunks simulated on the fly (no epochs), a fixed validation set."""

    shown = ("loss",)

    def __init__(
        self, config: SegTrainConfig, device: torch.device, progress: bool, log: Callable[[str], None]
    ) -> None:
        del progress  # its validation is quick: no bar of its own
        self.config, self.device, self.log = config, device, log
        self.total_steps = config.steps
        pools = voice_pools(config.data)
        self.maker = batch_maker(config, pools)
        val_wave, val_labels = make_batch(
            pools.val,
            np.random.default_rng([config.seed, 999_983]),
            config.data.val_chunks,
            config.chunk_config(),
            config.data.snr_db,
        )
        self.val_wave, self.val_labels = torch.from_numpy(val_wave), torch.from_numpy(val_labels.astype(np.float32))
        self.stream: BatchStream | None = None

    def batches(self, start: int, stop: int) -> BatchStream:
        # Workers start here (from a clean forkserver process: they never see the model or CUDA).
        self.stream = BatchStream(self.maker, start, stop, workers=self.config.data.workers)
        return self.stream

    def build(self, fresh: bool) -> list[torch.nn.Parameter]:
        config = self.config
        self.model = SegmentationModel(config.model).train().to(self.device)
        if config.init_from and fresh:
            kept = initialise_from(self.model, Path(config.init_from))
            self.log(f"initialised from {config.init_from}: {', '.join(kept)}")
        return list(self.model.parameters())

    def weights(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"model": self.model.state_dict()}

    def load_weights(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])

    def first_entries(self) -> list[dict[str, Any]]:
        """The untrained model's validation scores: the curves' first point."""
        return [{"kind": "val", "step": 0, **evaluate(self.model, self.val_wave, self.val_labels)}]

    def loss(self, batch: tuple[np.ndarray, np.ndarray]) -> StepLoss:
        wave, labels = batch
        log_probs = self.model(torch.from_numpy(wave).to(self.device))
        return StepLoss(task_loss(self.model, log_probs, torch.from_numpy(labels.astype(np.float32)).to(self.device)))

    def validation(self, last: dict[str, Any], elapsed_s: float) -> Validation | None:
        step = last["step"]
        if step % self.config.validate_every and step != self.config.steps:
            return None
        entry = {"kind": "val", "step": step, **evaluate(self.model, self.val_wave, self.val_labels)}
        scores = " ".join(f"{k} {v:.4f}" for k, v in entry.items() if k.startswith("val_"))
        return Validation(entry, f"step {step}: loss {last['loss']:.4f} {scores}")

    def checkpoint_due(self, step: int) -> bool:
        return False  # no epochs: only every checkpoint_every steps and the last

    def finish(self, out_dir: Path, history: list[dict[str, Any]], seconds: float) -> Finished:
        config = self.config
        last: dict[str, Any] = next((h for h in reversed(history) if h["kind"] == "val"), {})
        metrics = {k: float(v) for k, v in last.items() if k.startswith("val_")}
        model_path = out_dir / MODEL
        weights = {"model": self.model.state_dict()}
        write_model(
            model_path, MODEL_FORMAT, config.model.to_dict(), weights, config.to_dict(), metrics, step=config.steps
        )
        summary = {"steps": config.steps, "seconds": round(seconds, 1), "device": str(self.device), **metrics}
        return Finished(model_path, metrics, summary)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


# Train (or resume) a segmentation model into `out_dir`: train(config, out_dir, *, max_steps,
# progress, log) -> TrainResult, the framework's loop on a SegmentationTask.
train = partial(run_training, SegmentationTask)


def load_model(path: Path) -> SegmentationModel:
    """A trained model from `model.pt`, in eval mode (what export takes)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a segmentation model ({state.get('format')!r})")
    model = SegmentationModel(SegmentationSpec(**state["spec"]))
    model.load_state_dict(state["model"])
    return model.eval()
