"""The segmentation network's training config, its presets and the loading of both.

`SegTrainConfig` extends the run settings every task shares (pipelines/training/settings.py) and
is built by the same strict builder as the embedding student's (unknown keys are errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.segmentation.augment import SegAugmentConfig
from pipelines.segmentation.model import SegmentationSpec
from pipelines.simulation import ChunkConfig, TurnTakingConfig
from pipelines.training.config import build_config, read_mapping
from pipelines.training.presets import PRESET_FOLDERS, SEGMENTATION, find_preset, presets
from pipelines.training.settings import RunConfig

PRESETS_DIR = PRESET_FOLDERS[SEGMENTATION][0]
TURN_TAKING = ("simulated", "ami")


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
    # The simulated chunks' pauses, overlaps and backchannels: "simulated" (the log-normal
    # stand-ins of pipelines.simulation.TurnTakingConfig) or "ami" (measured on the AMI training
    # excerpts' train.rttm: pipelines/segmentation/turn_taking.py). Validation chunks keep the
    # stand-ins either way, so validation figures compare across runs.
    turn_taking: str = "simulated"
    speaker_count_weights: tuple[float, ...] = ()  # P(1..max_speakers speakers) per chunk; () = uniform

    def __post_init__(self) -> None:
        if self.turn_taking not in TURN_TAKING:
            raise ValueError(f"data.turn_taking must be one of {', '.join(TURN_TAKING)}, not {self.turn_taking!r}")


@dataclass(frozen=True)
class SegTrainConfig(RunConfig):
    """The segmentation network's config: the run settings (training.settings.RunConfig) and its own."""

    name: str = "segmentation"
    steps: int = 2000
    validate_every: int = 100
    # A trained model.pt whose weights start this run (every tensor of matching name and shape:
    # an overlap detector starts from the segmentation network, all but its last layer).
    init_from: str | None = None
    data: SegDataConfig = field(default_factory=SegDataConfig)
    augment: SegAugmentConfig = field(default_factory=SegAugmentConfig)
    model: SegmentationSpec = field(default_factory=SegmentationSpec)

    def chunk_config(self) -> ChunkConfig:
        """The validation chunks' layout (today's turn-taking, uniform speaker count)."""
        return ChunkConfig(chunk_seconds=self.data.chunk_seconds, max_speakers=self.model.max_speakers)

    def training_chunk_config(self, turn_taking: TurnTakingConfig) -> ChunkConfig:
        """The training chunks' layout: `turn_taking` (resolved from data.turn_taking by the
        trainer, which reads the RTTM) and data.speaker_count_weights."""
        return replace(
            self.chunk_config(), turn_taking=turn_taking, speaker_count_weights=self.data.speaker_count_weights
        )


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
    return list(presets(SEGMENTATION))


def load_preset(name: str) -> SegTrainConfig:
    """`segmentation-tiny` (the command line's name) or just `tiny`."""
    prefix = PRESET_FOLDERS[SEGMENTATION][1]
    config = load_config(find_preset(prefix + name.removeprefix(prefix), SEGMENTATION).path)
    if config.init_from and not Path(config.init_from).is_absolute():
        # A preset's starting weights ship with the package (pipelines/segmentation/weights/).
        config = replace(config, init_from=str(PRESETS_DIR.parent / config.init_from))
    return config
