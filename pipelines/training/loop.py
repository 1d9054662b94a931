"""The training loop: deterministic, resumable, with progress bar, checkpoints and curves.

Determinism and resume rest on one rule: everything random in a step is drawn from an rng
seeded by (seed, epoch, step-in-epoch), and the epoch's crop order from (seed, epoch). A
checkpoint therefore needs only weights, optimiser state, the global step and the history; a
run interrupted and resumed ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipelines.nn.device import configure_determinism, resolve_device
from pipelines.nn.ge2e import WaveformEmbedder
from pipelines.training.augment import AugmentAssets, augment, draw_room, load_assets
from pipelines.training.config import TrainConfig
from pipelines.training.data import Crop, Dataset, build_dataset, crop_audio, draw_file_crops
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

CHECKPOINT = "checkpoint.pt"  # resume state, rewritten atomically
MODEL = "model.pt"  # the final student, what `voiceflow export` takes
STFT_MODE = "conv"  # the students' front end: same spectrum as GE2E's, faster in onnxruntime


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    model_path: Path | None  # None when stopped early (max_steps)
    steps_done: int
    total_steps: int
    seconds: float
    metrics: dict[str, float]


def learning_rate(config: TrainConfig, step: int, total: int) -> float:
    """Linear warm-up then cosine decay: a pure function of the step, so nothing to checkpoint."""
    warm = min(1.0, (step + 1) / max(config.warmup_steps, 1))
    return config.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


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
    """The teacher network when it must hear the augmented batch; None when the cache serves."""
    if teacher_input == "clean":
        return None
    if teacher_input != "augmented":
        raise ValueError(f"loss.teacher_input must be 'clean' or 'augmented', not {teacher_input!r}")
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
    if config.loss.teacher_input != "augmented":
        raise ValueError("loss.sequence_weight needs loss.teacher_input 'augmented' (the teacher must hear the batch)")


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
    waves = []
    group = config.augment.room_group
    if group < 1:
        raise ValueError(f"augment.room_group must be >= 1, not {group}")
    room = None
    for position, crop in enumerate(crops):
        if group > 1 and position % group == 0:
            room = draw_room(rng, config.augment, assets)
        other_crop = dataset.train[int(rng.integers(len(dataset.train)))]
        other = crop_audio(dataset, other_crop) if other_crop.utterance != crop.utterance else None
        waves.append(augment(crop_audio(dataset, crop), rng, config.augment, assets, other, room))
    return np.stack(waves)


def check_sampling(config: TrainConfig) -> None:
    """data.sampling "file" draws crops off any offset, so no clean-crop teacher cache can serve them;
    data.meeting_group groups a batch's first draws by meeting, so it needs those draws."""
    data = config.data
    if data.sampling == "file" and config.loss.teacher_input != "augmented":
        raise ValueError("data.sampling 'file' needs loss.teacher_input 'augmented' (crops are drawn, not cached)")
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


def on_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights as CPU tensors: a checkpoint written on a GPU loads anywhere."""
    return {k: v.detach().cpu() for k, v in state.items()}


def same_run(config: dict[str, Any]) -> dict[str, Any]:
    """The config minus where it runs: a run may stop on a GPU machine and resume on a CPU one."""
    return {k: v for k, v in config.items() if k != "device"}


def save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint intact


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    max_steps: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train (or resume training of) a student into `out_dir`.

    `max_steps` stops after that many global steps with a checkpoint written, as if the run
    had been interrupted there (used by tests and by time-boxed jobs).
    """
    from tqdm import tqdm

    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(config.torch_threads, 1))
    device = resolve_device(config.device)
    configure_determinism(device)

    reading = StaggeredReading.from_config(config)
    check_sequence_loss(config)  # config errors before minutes of data loading
    check_anchor(config)
    check_sampling(config)
    dataset = build_dataset(reading.data_config(config.data) if reading else config.data, config.seed)
    if len(dataset.train) < config.batch_size:
        raise ValueError(f"only {len(dataset.train)} training crops for a batch of {config.batch_size}")
    assets = load_assets(config.data.root() / config.data.augmentation)
    if reading is None:  # the staggered objective's targets are windows of its segments, never cached
        teacher_train = torch.from_numpy(
            cached_teacher_embeddings(dataset, dataset.train, config.cache_path(), progress)
        ).to(device)
        teacher_val = cached_teacher_embeddings(dataset, dataset.val, config.cache_path(), progress)
        teacher_mean = teacher_train.mean(dim=0)
    live_teacher = live_teacher_for(config.loss.teacher_input)
    if live_teacher is not None:
        live_teacher.to(device)
    sequence_stride = config.student.frame_stride if config.loss.sequence_weight > 0 else 0
    val_labels = np.array([c.label for c in dataset.val])

    s = config.student
    spec = StudentSpec.from_mapping(asdict(s))
    # Seed right before the weights are drawn: the teacher cache may or may not have built (and
    # randomly initialised) a GE2E network above, which must not change the student's init.
    torch.manual_seed(config.seed)
    model = build_student(spec).train()
    copied = initialise_student(model, s.init)
    if copied:
        log(f"student initialised from GE2E: {', '.join(copied)}")
    head = AAMSoftmax(spec.embedding_dim, len(dataset.speakers), config.loss.margin, config.loss.scale)
    model.to(device)
    head.to(device)
    # on the device, and taken before a resume loads later weights: the anchor is always the start
    anchor = [p.detach().clone() for p in model.encoder.parameters()] if config.loss.anchor_weight else []
    params = [*model.encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    steps_per_epoch = len(dataset.train) // config.batch_size
    total = steps_per_epoch * config.epochs
    step, history = 0, []

    def validate() -> dict[str, float]:
        if reading is not None:
            assert live_teacher is not None
            return reading.validate(model, live_teacher, dataset, val_labels, device)
        if not len(dataset.val):
            return {"val_cos": float("nan"), "val_eer": float("nan"), "teacher_eer": float("nan")}
        val_emb = embed_clean(model, dataset, dataset.val, device)
        return {
            "val_cos": mean_cosine(val_emb, teacher_val),
            "val_eer": equal_error_rate(val_emb, val_labels),
            "teacher_eer": equal_error_rate(teacher_val, val_labels),
        }

    ckpt_path = out_dir / CHECKPOINT
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if same_run(state["config"]) != same_run(config.to_dict()):
            raise ValueError(f"{ckpt_path} was written with another config; use a new --out or --restart")
        model.encoder.load_state_dict(state["encoder"])
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        step, history = int(state["step"]), list(state["history"])
        log(f"resuming from step {step}/{total} ({ckpt_path})")

    def checkpoint() -> None:
        save_atomic(
            {
                "config": config.to_dict(),
                "encoder": on_cpu(model.encoder.state_dict()),
                "head": on_cpu(head.state_dict()),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "history": history,
            },
            ckpt_path,
        )

    stop_at = total if max_steps is None else min(total, max_steps)
    bar = tqdm(total=total, initial=step, desc=config.name, unit="step", disable=not progress)
    order: np.ndarray | None = None
    order_epoch = -1
    while step < stop_at:
        epoch, i = divmod(step, steps_per_epoch)
        if order_epoch != epoch:
            order, order_epoch = epoch_order(config.seed, epoch, len(dataset.train)), epoch
        assert order is not None
        idx = order[i * config.batch_size : (i + 1) * config.batch_size]
        rng = np.random.default_rng([config.seed, epoch, i])
        crops = step_crops(dataset, config, idx, rng)
        wave = torch.from_numpy(make_batch(dataset, crops, rng, config, assets)).to(device)
        lr = learning_rate(config, step, total)
        for group in optimizer.param_groups:
            group["lr"] = lr

        sequence = torch.zeros((), device=device)
        centered = torch.zeros((), device=device)
        batch_labels = torch.tensor([c.label for c in crops], dtype=torch.long, device=device)
        if reading is not None:
            assert live_teacher is not None
            ends = reading.draw_ends(rng, config.loss.windows_per_segment)
            target = teacher_on(live_teacher, reading.windows(wave, ends))
            emb = reading.readouts(model, wave, ends)
            batch_labels = batch_labels.repeat_interleave(len(ends))
        elif sequence_stride:
            assert isinstance(live_teacher, WaveformEmbedder)
            target, target_sequence = teacher_with_sequence(live_teacher, wave, sequence_stride)
            emb, student_sequence = student_with_sequence(model, wave)
            sequence = sequence_distillation(student_sequence, target_sequence)
        else:
            target = teacher_train[idx] if live_teacher is None else teacher_on(live_teacher, wave)
            emb = model(wave)
        distill = cosine_distillation(emb, target)
        if reading is None:
            centered = centered_cosine_distillation(emb, target, teacher_mean)
        cls = head(emb, batch_labels)
        relation = relational_distillation(emb, target)
        drift = weight_drift(list(model.encoder.parameters()), anchor) if anchor else torch.zeros((), device=device)
        loss = (
            config.loss.distill_weight * distill
            + config.loss.centered_weight * centered
            + config.loss.cls_weight * cls
            + config.loss.relation_weight * relation
            + config.loss.sequence_weight * sequence
            + config.loss.anchor_weight * drift
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        step += 1

        entry = {"kind": "step", "step": step, "epoch": epoch, "lr": lr}
        entry.update(
            loss=loss.item(),
            distill=distill.item(),
            centered=centered.item(),
            cls=cls.item(),
            relation=relation.item(),
            sequence=sequence.item(),
            drift=drift.item(),
        )
        history.append(entry)
        bar.update(1)
        bar.set_postfix(
            loss=f"{entry['loss']:.4f}",
            distill=f"{entry['distill']:.4f}",
            centered=f"{entry['centered']:.4f}",
        )

        if step % steps_per_epoch == 0:  # epoch end: validate on held-out speakers
            history.append(
                {"kind": "epoch", "step": step, "epoch": epoch, **validate(), "elapsed_s": time.monotonic() - started}
            )
            bar.write(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in history[-1].items()}))
        if step % config.checkpoint_every == 0 or step % steps_per_epoch == 0 or step == stop_at:
            checkpoint()
    bar.close()
    seconds = time.monotonic() - started
    if step < total:
        log(f"stopped at step {step}/{total}; rerun the same command to resume")
        return TrainResult(out_dir, None, step, total, seconds, {})

    write_history_outputs(history, out_dir)
    last: dict[str, Any] = next((h for h in reversed(history) if h["kind"] == "epoch"), {})
    metrics: dict[str, float] = {k: float(last[k]) for k in ("val_cos", "val_eer", "teacher_eer") if k in last}
    model_path = out_dir / MODEL
    save_atomic(
        {
            "format": "voiceflow-student-1",
            "spec": spec.to_dict(),
            "stft": STFT_MODE,
            "encoder": on_cpu(model.encoder.state_dict()),
            "config": config.to_dict(),
            "speakers": dataset.speakers,
            "metrics": metrics,
        },
        model_path,
    )
    summary: dict[str, Any] = {**calibrate_final_model(model_path, log)}
    store_background_mean(model_path, log)
    summary |= {
        "steps": total,
        "train_crops": len(dataset.train),
        "val_crops": len(dataset.val),
    }
    summary.update(metrics)
    (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return TrainResult(out_dir, model_path, step, total, seconds, metrics)


def calibrate_final_model(model_path: Path, log: Callable[[str], None]) -> dict[str, float]:
    """Measure the model's merge-threshold shift on the meetings its config set aside and store it
    in model.pt, so every export of that reading carries it (pipelines/export/calibration.py)."""
    from pipelines.export.calibration import calibrate_checkpoint

    calibration = calibrate_checkpoint(model_path)
    if calibration is None:
        return {}
    state = torch.load(model_path, map_location="cpu", weights_only=False)
    save_atomic({**state, "calibration": calibration.to_metadata()}, model_path)
    log(f"calibrated on {', '.join(calibration.recordings)}: merge_threshold_shift {calibration.shift:+.4f}")
    return {"merge_threshold_shift": calibration.shift}


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


def write_history_outputs(history: list[dict[str, Any]], out_dir: Path) -> None:
    from pipelines.training.curves import write_curves

    write_curves(history, out_dir)
