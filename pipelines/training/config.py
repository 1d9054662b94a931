"""Training configuration: one typed, frozen dataclass tree, loaded from YAML/JSON or a preset.

Unknown keys are errors (a typo in a config must not silently train something else), and the
resolved config is stored in every checkpoint and manifest so a version can be reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipelines.paths import REPO_ROOT, shared_data_dir
from pipelines.training.presets import EMBEDDING, PRESET_FOLDERS, find_preset
from pipelines.training.settings import RunConfig

PRESETS_DIR = PRESET_FOLDERS[EMBEDDING][0]
SAMPLING_MODES = ("grid", "file")
# loss.teacher_input values for which the teacher runs on each batch (no clean-crop cache)
LIVE_TEACHER_INPUTS = ("augmented", "dry", "wideband")
# as error messages name them
LIVE_TEACHER_CHOICES = ", ".join(repr(v) for v in LIVE_TEACHER_INPUTS[:-1]) + f" or {LIVE_TEACHER_INPUTS[-1]!r}"


@dataclass(frozen=True)
class DataConfig:
    # Folders under data_root; data_root None = $VOICEFLOW_SHARED_DATA or <repo>/../shared/data.
    data_root: str | None = None
    librispeech: str = "librispeech-train-clean-100"
    ami: str = "ami-excerpts"
    augmentation: str = "augmentation"
    max_speakers: int | None = None  # training-split LibriSpeech speakers to use (by id), None = all 200
    ami_files: list[str] = field(default_factory=lambda: [f"trn{i:02d}" for i in range(10)])
    val_speakers: int = 20  # held-out (dev) LibriSpeech speakers whose crops draw the validation curves
    crop_seconds: float = 1.6  # the engine's embedding window
    crop_hop_seconds: float = 0.4
    # A denser grid on the AMI meetings (None = crop_hop_seconds): they are the only far-field
    # speech there is, so a smaller hop gives them a larger share of every epoch.
    ami_hop_seconds: float | None = None
    max_crops_per_utterance: int | None = None
    # AMI train excerpts kept out of training for `voiceflow export` to calibrate the model's
    # similarity scale on (pipelines/export/calibration.py); never also in ami_files.
    calibration_ami_files: list[str] = field(default_factory=list)
    # How a step's crops are drawn. "grid": every crop of the fixed grid once per epoch (AMI crops
    # only where the reference has speech), so a recording weighs by its length. "file": each crop
    # draws a training recording uniformly, then any offset in it (pipelines.training.data
    # draw_file_crops): every recording weighs the same, and meeting crops also fall on silence and
    # turn changes, as the engine's windows do. An epoch is then a count of steps, as long as the
    # grid's. Needs a teacher that hears the batch (loss.teacher_input "augmented").
    sampling: str = "grid"
    # sampling "file": the first meeting_group crops of every batch come from one AMI meeting, so
    # the relational loss sees pairs of speakers of the same meeting (the pair the engine's merge
    # rule decides on); 0 = every crop drawn alone. augment.room_group can put them in one room.
    meeting_group: int = 0

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"data.sampling must be one of {', '.join(SAMPLING_MODES)}, not {self.sampling!r}")
        both = sorted(set(self.ami_files) & set(self.calibration_ami_files))
        if both:
            raise ValueError(f"data.calibration_ami_files must be meetings the model never trains on: {both}")

    def root(self) -> Path:
        if self.data_root:
            return Path(self.data_root)
        return shared_data_dir()


@dataclass(frozen=True)
class StudentConfig:
    channels: int = 128
    blocks: int = 3
    embedding_dim: int = 256  # must equal the teacher's (256) for the cosine distillation loss
    input_norm: str = "cmn"  # "cmn" (per-window mean removal) or "batch" (learned, global)
    arch: str = "ecapa"  # "ecapa" (conv net) or "lstm" (GE2E's encoder at 1/frame_stride the frame rate)
    frame_stride: int = 3  # lstm: 10 ms mel frames averaged per LSTM step
    lstm_layers: int = 3
    lstm_hidden: int = 256
    pooling: str = "mean"  # lstm: "mean" (average the frames) or "stack" (concatenate them)
    conv_frontend: int = 0  # lstm + stack: channels of a 10 ms convolution before stacking (0 = none)
    init: str = "random"  # "teacher": start from GE2E's weights wherever name and shape match (lstm)
    # 0: trained to embed one window per crop. K >= 2: trained to be read in K staggered streams
    # (pipelines.training.staggered; a stride-1 lstm), and exported for that reading.
    streams: int = 0
    # With streams: segments of window + H every H seconds (H > 0) instead of the streams' hop of
    # window / (K - 1); 0.6 reads each frame 3.67 times with < 0.6 s of history, between 3 and 4 streams.
    segment_hop_seconds: float = 0.0


@dataclass(frozen=True)
class LossConfig:
    distill_weight: float = 1.0
    centered_weight: float = 1.0  # distillation after removing the teacher's mean (see losses.py)
    cls_weight: float = 0.1
    relation_weight: float = 0.0  # the batch's pairwise similarities against the teacher's (losses.py)
    # The LSTM student's output at every step against the teacher's at the same audio time
    # (losses.sequence_distillation); needs student.arch "lstm" and teacher_input "augmented".
    sequence_weight: float = 0.0
    # L2-SP: the squared distance of the student's weights from where `student.init` put them
    # (GE2E's, with init "teacher"; losses.weight_drift), so fine-tuning keeps GE2E's similarity
    # scale on audio unlike its training data while it learns a new reading.
    anchor_weight: float = 0.0
    margin: float = 0.2  # additive angular margin (AAM-softmax)
    scale: float = 30.0
    # What the teacher hears: "clean" (its cached embedding of the clean crop: the student learns to
    # be more robust than the teacher) or "augmented" (the teacher runs on the very batch the
    # student sees: the student copies the teacher's geometry on noisy, reverberant audio too,
    # which is what the engine's GE2E-tuned clustering thresholds assume) or "dry" (the teacher
    # runs on the batch before its channel: speed, turn and overlap applied, room, noise, gain and
    # telephone not; the student, hearing the channel, learns the teacher's clean-line embedding) or
    # "wideband" (the teacher hears the batch as the student does but without the telephone line:
    # the student copies the teacher's own geometry on noise and rooms, as with "augmented", and its
    # wideband embedding of telephone-band audio).
    teacher_input: str = "clean"
    windows_per_segment: int = 6  # student.streams: window ends read off each training segment


@dataclass(frozen=True)
class AugmentConfig:
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 20.0)
    p_rir: float = 0.3
    p_overlap: float = 0.2
    overlap_db: tuple[float, float] = (-15.0, -6.0)  # second speaker's level relative to the first
    gain_db: tuple[float, float] = (-12.0, 6.0)
    # Crops per shared room: >1 puts consecutive groups of a batch through one reverberation and
    # noise, so the batch holds different voices in the same room, which is what a meeting
    # recording is and what the relational loss should see; 1 = every crop its own room.
    room_group: int = 1
    # Speed perturbation (tempo and pitch): new pseudo-voices, so a distilled student sees more
    # than the 200 training voices (only with the teacher on the augmented batch does the target
    # follow the changed voice; with the clean cache it would teach speed invariance instead).
    p_speed: float = 0.0
    speed: tuple[float, float] = (0.9, 1.1)
    # Share of reverberated crops whose room is drawn (augment.synthetic_rir) rather than taken
    # from the few recorded RIRs; 0 keeps the recorded ones only (and the draws of older runs).
    p_synthetic_rir: float = 0.0
    # Share of crops whose first turn_seconds (drawn) are another speaker's (augment.speaker_turn):
    # for a staggered reading, whose history before a window must not leak into its embedding.
    # 0 keeps older configs' draws bit for bit.
    p_turn: float = 0.0
    turn_seconds: tuple[float, float] = (0.0, 0.8)
    rt60_s: tuple[float, float] = (0.2, 0.9)
    drr_db: tuple[float, float] = (-3.0, 12.0)
    # Share of crops sent down a telephone line last (the dev suite's channel: 300-3400 Hz, 8 kHz,
    # G.711 mu-law; pipelines/telephone.py), where GE2E is weakest. 0 keeps older draws.
    p_telephone: float = 0.0


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """The embedding student's config: the run settings (settings.RunConfig) and its own."""

    name: str = "student"
    batch_size: int = 64
    checkpoint_every: int = 50  # steps; a checkpoint is also written at every epoch end
    device: str = "cpu"
    epochs: int = 10
    cache_dir: str = "runs/cache"  # teacher embeddings, relative to the repo root unless absolute
    data: DataConfig = field(default_factory=DataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def cache_path(self) -> Path:
        path = Path(self.cache_dir)
        return path if path.is_absolute() else REPO_ROOT / path


T = TypeVar("T")


def build_config(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build config dataclass `cls` from a nested mapping; unknown keys are errors (`where` names the level).

    Shared by the embedding and segmentation trainers, so both refuse typos the same way.
    """
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown config key(s) in {where or 'top level'}: {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for name, value in values.items():
        current = getattr(defaults, name)
        if is_dataclass(current) and isinstance(value, dict):
            kwargs[name] = build_config(type(current), value, f"{where}.{name}".strip("."))
        elif isinstance(current, tuple) and isinstance(value, list | tuple):
            kwargs[name] = tuple(float(v) for v in value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    return build_config(TrainConfig, values, "")


def read_mapping(path: Path) -> dict[str, Any]:
    """A YAML or JSON config file as a mapping (JSON is YAML, so one parser reads both)."""
    values = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config must be a mapping")
    return values


def load_config(path: Path) -> TrainConfig:
    return config_from_dict(read_mapping(path))


def preset_names(folder: Path = PRESETS_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_preset(name: str) -> TrainConfig:
    return load_config(find_preset(name, EMBEDDING).path)


def with_values(config: T, values: dict[str, Any]) -> T:
    """`config` with the values at dotted paths ("seed", "data.data_root") replaced; None keeps a
    value. How both trainers take command-line overrides."""
    changes: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        if value is None:
            continue
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            changes[head] = value
    for head, inner in nested.items():
        changes[head] = with_values(getattr(config, head), inner)
    return replace(config, **changes) if changes else config  # type: ignore[type-var]


def with_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """Top-level overrides from the command line (None = keep the config's value)."""
    return with_values(config, overrides)


def with_data_root(config: TrainConfig, data_root: str | None) -> TrainConfig:
    return with_values(config, {"data.data_root": data_root})
