"""The embedding student's task in the training framework (pipelines/training/framework.py).

Its data, networks and losses: everything random in a step is drawn from an rng seeded by (seed,
epoch, step-in-epoch), and the epoch's crop order from (seed, epoch), which is what lets the
framework's checkpoint hold only weights, optimiser state, step and history.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from pipelines.nn.ge2e import WaveformEmbedder
from pipelines.training.augment import AugmentAssets, channel_stages, draw_room, load_assets, voice
from pipelines.training.checkpoint import MODEL, save_atomic, write_model
from pipelines.training.config import LIVE_TEACHER_CHOICES, LIVE_TEACHER_INPUTS, TrainConfig
from pipelines.training.data import Crop, Dataset, build_dataset, crop_audio, draw_file_crops
from pipelines.training.framework import Finished, StepLoss, Validation, run_training
from pipelines.training.losses import (
    AAMSoftmax,
    centered_cosine_distillation,
    cosine_distillation,
    relational_distillation,
    sequence_distillation,
    weight_drift,
)
from pipelines.training.metrics import equal_error_rate, mean_cosine
from pipelines.training.staggered import StaggeredReading
from pipelines.training.student import StudentSpec, build_encoder
from pipelines.training.teacher import cached_teacher_embeddings, default_teacher

STUDENT_FORMAT = "voiceflow-student-1"  # model.pt's "format": what export/checkpoint.py reads
STFT_MODE = "conv"  # the students' front end: same spectrum as GE2E's, faster in onnxruntime


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 7919]).permutation(n)


def build_student(spec: StudentSpec) -> WaveformEmbedder:
    return WaveformEmbedder(build_encoder(spec), stft=STFT_MODE)


def initialise_student(model: WaveformEmbedder, init: str) -> list[str]:
    """Apply the config's `student.init`; returns the teacher tensors copied (none for "random")."""
    if init == "random":
        return []
    if init != "teacher":
        raise ValueError(f"student.init must be 'random' or 'teacher', not {init!r}")
    from pipelines.nn.ge2e import GE2EEncoder
    from pipelines.training.student_lstm import PooledLSTMEncoder, copy_teacher_weights

    if not isinstance(model.encoder, PooledLSTMEncoder):
        raise ValueError("student.init 'teacher' needs student.arch 'lstm' (only it shares GE2E's layers)")
    copied = copy_teacher_weights(model.encoder, GE2EEncoder.pretrained())
    if "lstm.weight_ih_l0" not in copied:  # a lone matching bias is no head start
        raise ValueError("student.init 'teacher': no GE2E LSTM layer matches this student's width (256)")
    return copied


def live_teacher_for(teacher_input: str) -> torch.nn.Module | None:
    """The teacher network when it must hear the batch (LIVE_TEACHER_INPUTS); None when the cache serves."""
    if teacher_input == "clean":
        return None
    if teacher_input not in LIVE_TEACHER_INPUTS:
        raise ValueError(f"loss.teacher_input must be 'clean', {LIVE_TEACHER_CHOICES}, not {teacher_input!r}")
    return default_teacher(stft=STFT_MODE)


def teacher_on(teacher: torch.nn.Module, wave: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        target = teacher(wave)
    # cloned outside inference mode: a clone made inside is still an inference tensor, which
    # autograd refuses to save (a loss that multiplies by the target would fail)
    return target.clone()


def teacher_with_sequence(
    teacher: WaveformEmbedder, wave: torch.Tensor, stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's embedding and its LSTM output at each student step's end, in one pass."""
    from pipelines.nn.ge2e import GE2EEncoder
    from pipelines.training.student_lstm import at_student_steps

    encoder = teacher.encoder
    if not isinstance(encoder, GE2EEncoder):
        raise TypeError(f"the sequence loss needs GE2E as the teacher, not {type(encoder).__name__}")
    with torch.inference_mode():
        emb, sequence = encoder.forward_with_sequence(teacher.frontend(wave))
        steps = at_student_steps(sequence, stride)
    return emb.clone(), steps.clone()  # outside inference mode, as in teacher_on


def student_with_sequence(model: WaveformEmbedder, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from pipelines.training.student_lstm import PooledLSTMEncoder

    encoder = model.encoder
    if not isinstance(encoder, PooledLSTMEncoder):
        raise TypeError(f"the sequence loss needs the recurrent student, not {type(encoder).__name__}")
    return encoder.forward_with_sequence(model.frontend(wave))


def check_sequence_loss(config: TrainConfig) -> None:
    """sequence_weight needs a student whose steps line up with the teacher's LSTM outputs."""
    if config.loss.sequence_weight <= 0:
        return
    s = config.student
    if s.arch != "lstm" or s.lstm_hidden != 256:
        raise ValueError("loss.sequence_weight needs student.arch 'lstm' with lstm_hidden 256 (GE2E's width)")
    if config.loss.teacher_input not in LIVE_TEACHER_INPUTS:
        raise ValueError(
            f"loss.sequence_weight needs loss.teacher_input {LIVE_TEACHER_CHOICES} (the teacher must hear the batch)"
        )


def check_anchor(config: TrainConfig) -> None:
    """anchor_weight pulls towards the weights the student started from: they must be GE2E's."""
    weight = config.loss.anchor_weight
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"loss.anchor_weight must be a finite number >= 0, not {weight}")
    if weight and config.student.init != "teacher":
        raise ValueError("loss.anchor_weight needs student.init 'teacher' (a random start is no anchor)")


def make_batch(
    dataset: Dataset,
    crops: Sequence[Crop],
    rng: np.random.Generator,
    config: TrainConfig,
    assets: AugmentAssets,
) -> np.ndarray:
    """The batch the student hears (every crop augmented)."""
    return make_batch_pair(dataset, crops, rng, config, assets).heard


class BatchPair(NamedTuple):
    heard: np.ndarray  # what the student hears: every crop through its channel
    dry: np.ndarray  # the same crops voiced (speed, turn, overlap) with no channel
    wideband: np.ndarray  # the same crops through their channel but no telephone line


def make_batch_pair(
    dataset: Dataset,
    crops: Sequence[Crop],
    rng: np.random.Generator,
    config: TrainConfig,
    assets: AugmentAssets,
) -> BatchPair:
    """The batch the student hears and what a live teacher may hear of the same crops, drawn from one
    rng in the same order as a plain augmented batch."""
    heard, dry, wideband = [], [], []
    group = config.augment.room_group
    if group < 1:
        raise ValueError(f"augment.room_group must be >= 1, not {group}")
    room = None
    for position, crop in enumerate(crops):
        if group > 1 and position % group == 0:
            room = draw_room(rng, config.augment, assets)
        other_crop = dataset.train[int(rng.integers(len(dataset.train)))]
        other = crop_audio(dataset, other_crop) if other_crop.utterance != crop.utterance else None
        voiced = voice(crop_audio(dataset, crop), rng, config.augment, other)
        dry.append(np.clip(voiced, -1.0, 1.0).astype(np.float32))
        before_line, after_line = channel_stages(voiced, rng, config.augment, assets, room)
        wideband.append(before_line)
        heard.append(after_line)
    return BatchPair(np.stack(heard), np.stack(dry), np.stack(wideband))


def check_sampling(config: TrainConfig) -> None:
    """data.sampling "file" draws crops off any offset, so no clean-crop teacher cache can serve them;
    data.meeting_group groups a batch's first draws by meeting, so it needs those draws."""
    data = config.data
    if data.sampling == "file" and config.loss.teacher_input not in LIVE_TEACHER_INPUTS:
        raise ValueError(
            f"data.sampling 'file' needs loss.teacher_input {LIVE_TEACHER_CHOICES} (crops are drawn, not cached)"
        )
    if isinstance(data.meeting_group, bool) or not isinstance(data.meeting_group, int):
        raise ValueError(f"data.meeting_group must be a whole number, not {data.meeting_group!r}")
    if data.meeting_group and data.sampling != "file":
        raise ValueError("data.meeting_group needs data.sampling 'file'")
    if not 0 <= data.meeting_group <= config.batch_size:
        raise ValueError(f"data.meeting_group must be 0..{config.batch_size} (batch size), not {data.meeting_group}")


def step_crops(dataset: Dataset, config: TrainConfig, grid: np.ndarray, rng: np.random.Generator) -> list[Crop]:
    """A step's crops: its slice `grid` of the epoch's crop order, or fresh draws (data.sampling "file")."""
    if config.data.sampling == "file":
        return draw_file_crops(dataset, rng, config.batch_size, config.data.meeting_group)
    return [dataset.train[int(j)] for j in grid]


def embed_clean(
    model: WaveformEmbedder, dataset: Dataset, crops: list[Any], device: torch.device | None = None, batch: int = 64
) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            wave = torch.from_numpy(np.stack([crop_audio(dataset, c) for c in crops[i : i + batch]]))
            out.append(model(wave.to(device or "cpu")).cpu().numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


@dataclass(frozen=True)
class StudentBatch:
    epoch: int
    grid: np.ndarray  # the step's slice of the epoch's crop order (indexes the clean teacher cache)
    crops: list[Crop]
    rng: np.random.Generator  # the step's draws, shared by the batch and the staggered readout
    wave: torch.Tensor
    teacher_wave: torch.Tensor  # what a live teacher hears: `wave` itself, or the dry or wideband batch


class StudentTask:
    """The embedding student as a task of the training framework: a GE2E-distilled encoder with an
    AAM-softmax head, trained in epochs over the crop grid (or file draws) of `build_dataset`."""

    shown = ("loss", "distill", "centered")

    def __init__(self, config: TrainConfig, device: torch.device, progress: bool, log: Callable[[str], None]) -> None:
        self.config, self.device, self.log = config, device, log
        self.reading = StaggeredReading.from_config(config)
        check_sequence_loss(config)  # config errors before minutes of data loading
        check_anchor(config)
        check_sampling(config)
        data = self.reading.data_config(config.data) if self.reading else config.data
        self.dataset = dataset = build_dataset(data, config.seed)
        if len(dataset.train) < config.batch_size:
            raise ValueError(f"only {len(dataset.train)} training crops for a batch of {config.batch_size}")
        self.assets = load_assets(config.data.root() / config.data.augmentation)
        if self.reading is None:  # the staggered objective's targets are windows of its segments, never cached
            cache = config.cache_path()
            train_cache = cached_teacher_embeddings(dataset, dataset.train, cache, progress)
            self.teacher_train = torch.from_numpy(train_cache).to(device)
            self.teacher_val = cached_teacher_embeddings(dataset, dataset.val, cache, progress)
            self.teacher_mean = self.teacher_train.mean(dim=0)
        self.live_teacher = live_teacher_for(config.loss.teacher_input)
        if self.live_teacher is not None:
            self.live_teacher.to(device)
        self.sequence_stride = config.student.frame_stride if config.loss.sequence_weight > 0 else 0
        self.val_labels = np.array([c.label for c in dataset.val])
        self.spec = StudentSpec.from_mapping(asdict(config.student))
        self.steps_per_epoch = len(dataset.train) // config.batch_size
        self.total_steps = self.steps_per_epoch * config.epochs

    def batches(self, start: int, stop: int) -> Iterator[StudentBatch]:
        config, dataset = self.config, self.dataset
        order, order_epoch = np.zeros(0, np.int64), -1
        for step in range(start, stop):
            epoch, i = divmod(step, self.steps_per_epoch)
            if order_epoch != epoch:
                order, order_epoch = epoch_order(config.seed, epoch, len(dataset.train)), epoch
            grid = order[i * config.batch_size : (i + 1) * config.batch_size]
            rng = np.random.default_rng([config.seed, epoch, i])
            crops = step_crops(dataset, config, grid, rng)
            pair = make_batch_pair(dataset, crops, rng, config, self.assets)
            wave = torch.from_numpy(pair.heard).to(self.device)
            # "augmented" (and "clean", whose teacher is the cache) hear `wave` itself
            other = {"dry": pair.dry, "wideband": pair.wideband}.get(config.loss.teacher_input)
            teacher_wave = wave if other is None else torch.from_numpy(other).to(self.device)
            yield StudentBatch(epoch, grid, crops, rng, wave, teacher_wave)

    def build(self, fresh: bool) -> list[torch.nn.Parameter]:
        config = self.config
        self.model = build_student(self.spec).train()
        copied = initialise_student(self.model, config.student.init)
        if copied:
            self.log(f"student initialised from GE2E: {', '.join(copied)}")
        speakers = len(self.dataset.speakers)
        self.head = AAMSoftmax(self.spec.embedding_dim, speakers, config.loss.margin, config.loss.scale)
        self.model.to(self.device)
        self.head.to(self.device)
        # on the device, and taken before a resume loads later weights: the anchor is always the start
        encoder = self.model.encoder.parameters()
        self.anchor = [p.detach().clone() for p in encoder] if config.loss.anchor_weight else []
        return [*self.model.encoder.parameters(), *self.head.parameters()]

    def weights(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"encoder": self.model.encoder.state_dict(), "head": self.head.state_dict()}

    def load_weights(self, state: dict[str, Any]) -> None:
        self.model.encoder.load_state_dict(state["encoder"])
        self.head.load_state_dict(state["head"])

    def first_entries(self) -> list[dict[str, Any]]:
        return []

    def loss(self, batch: StudentBatch) -> StepLoss:
        config, device, wave = self.config, self.device, batch.wave
        model, reading, live_teacher = self.model, self.reading, self.live_teacher
        sequence = torch.zeros((), device=device)
        centered = torch.zeros((), device=device)
        labels = torch.tensor([c.label for c in batch.crops], dtype=torch.long, device=device)
        if reading is not None:
            assert live_teacher is not None
            ends = reading.draw_ends(batch.rng, config.loss.windows_per_segment)
            target = teacher_on(live_teacher, reading.windows(batch.teacher_wave, ends))
            emb = reading.readouts(model, wave, ends)
            labels = labels.repeat_interleave(len(ends))
        elif self.sequence_stride:
            assert isinstance(live_teacher, WaveformEmbedder)
            target, target_sequence = teacher_with_sequence(live_teacher, batch.teacher_wave, self.sequence_stride)
            emb, student_sequence = student_with_sequence(model, wave)
            sequence = sequence_distillation(student_sequence, target_sequence)
        else:
            target = (
                self.teacher_train[batch.grid] if live_teacher is None else teacher_on(live_teacher, batch.teacher_wave)
            )
            emb = model(wave)
        distill = cosine_distillation(emb, target)
        if reading is None:
            centered = centered_cosine_distillation(emb, target, self.teacher_mean)
        cls = self.head(emb, labels)
        relation = relational_distillation(emb, target)
        anchor = self.anchor
        drift = weight_drift(list(model.encoder.parameters()), anchor) if anchor else torch.zeros((), device=device)
        weights = config.loss
        total = (
            weights.distill_weight * distill
            + weights.centered_weight * centered
            + weights.cls_weight * cls
            + weights.relation_weight * relation
            + weights.sequence_weight * sequence
            + weights.anchor_weight * drift
        )
        terms = {"distill": distill, "centered": centered, "cls": cls, "relation": relation}
        return StepLoss(total, {**terms, "sequence": sequence, "drift": drift}, {"epoch": batch.epoch})

    def validation(self, last: dict[str, Any], elapsed_s: float) -> Validation | None:
        """At every epoch end: the student on held-out speakers."""
        step = last["step"]
        if not self.checkpoint_due(step):
            return None
        epoch = (step - 1) // self.steps_per_epoch
        entry = {"kind": "epoch", "step": step, "epoch": epoch, **self.validate(), "elapsed_s": elapsed_s}
        return Validation(entry, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in entry.items()}))

    def validate(self) -> dict[str, float]:
        dataset = self.dataset
        if self.reading is not None:
            assert self.live_teacher is not None
            return self.reading.validate(self.model, self.live_teacher, dataset, self.val_labels, self.device)
        if not len(dataset.val):
            return {"val_cos": float("nan"), "val_eer": float("nan"), "teacher_eer": float("nan")}
        val_emb = embed_clean(self.model, dataset, dataset.val, self.device)
        return {
            "val_cos": mean_cosine(val_emb, self.teacher_val),
            "val_eer": equal_error_rate(val_emb, self.val_labels),
            "teacher_eer": equal_error_rate(self.teacher_val, self.val_labels),
        }

    def checkpoint_due(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0  # every epoch end

    def finish(self, out_dir: Path, history: list[dict[str, Any]], seconds: float) -> Finished:
        config, dataset = self.config, self.dataset
        last: dict[str, Any] = next((h for h in reversed(history) if h["kind"] == "epoch"), {})
        metrics: dict[str, float] = {k: float(last[k]) for k in ("val_cos", "val_eer", "teacher_eer") if k in last}
        model_path = out_dir / MODEL
        encoder = {"encoder": self.model.encoder.state_dict()}
        spec, settings = self.spec.to_dict(), config.to_dict()
        write_model(
            model_path, STUDENT_FORMAT, spec, encoder, settings, metrics, stft=STFT_MODE, speakers=dataset.speakers
        )
        summary: dict[str, Any] = {**calibrate_final_model(model_path, self.log)}
        store_background_mean(model_path, self.log)
        summary |= {"steps": self.total_steps, "train_crops": len(dataset.train), "val_crops": len(dataset.val)}
        return Finished(model_path, metrics, {**summary, **metrics})

    def close(self) -> None:
        pass


# Train (or resume training of) a student into `out_dir`: train(config, out_dir, *, max_steps,
# progress, log) -> TrainResult, the framework's loop on a StudentTask.
train = partial(run_training, StudentTask)


def calibrate_final_model(model_path: Path, log: Callable[[str], None]) -> dict[str, float]:
    """Measure the model's merge-threshold shift on the meetings its config set aside and store it
    in model.pt, so every export of that reading carries it (pipelines/export/calibration.py)."""
    from pipelines.export.calibration import calibrate_checkpoint

    calibration = calibrate_checkpoint(model_path)
    if calibration is None:
        return {}
    state = torch.load(model_path, map_location="cpu", weights_only=False)
    stored = calibration.to_metadata()
    save_atomic({**state, "calibration": stored}, model_path)
    log(f"calibrated on {', '.join(calibration.recordings)}: merge_threshold_shift {calibration.shift:+.4f}")
    return {"merge_threshold_shift": stored["merge_threshold_shift"]}  # what the model carries (rounded)


def store_background_mean(model_path: Path, log: Callable[[str], None]) -> None:
    """Compute the model's background mean while its training audio is at hand and store it in
    model.pt, so an export (possibly where that audio is not mounted) bundles it."""
    import tempfile

    from pipelines.export.background import checkpoint_background
    from pipelines.export.checkpoint import export_checkpoint

    state = torch.load(model_path, map_location="cpu", weights_only=False)
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_checkpoint(model_path, Path(tmp) / "model.onnx", calibrate=False, background=False)
        mean = checkpoint_background(exported.path, state.get("config", {}))
    save_atomic({**state, "background_mean": mean.tolist()}, model_path)
    log(f"background mean stored (norm {float((mean**2).sum()) ** 0.5:.3f})")
