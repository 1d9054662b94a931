"""A model's background (mean) embedding, from TRAINING audio only: one part of its bundle.

Sources: the AMI train excerpts the model's training config names (`data.ami_files`, never dev
recordings) and every 4th LibriSpeech training-split speaker (`split_speakers`'s first list; the
held-out speakers are never used); 1.6 s windows every 1 s with some energy, averaged per source
set, then the two set means averaged. The streaming session subtracts it before online clustering:
it removes the direction every embedding shares, without which different speakers' raw cosines
are so high that a stream collapses into one speaker.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.simulation import split_speakers
from voiceflow.audio import load_audio
from voiceflow.embedding import EmbeddingModel

WINDOW = 25600  # 1.6 s at 16 kHz
HOP = 16000
MIN_RMS = 0.005


class BackgroundDataError(ValueError):
    """The training audio a background mean is computed from is not where the config says."""


def set_mean(model: EmbeddingModel, files: Sequence[Path]) -> np.ndarray | None:
    """The mean embedding of the voiced 1.6 s windows of `files`; None when none is voiced."""
    means = []
    for path in files:
        audio = load_audio(path)
        starts = range(0, max(1, len(audio) - WINDOW), HOP)
        windows = np.stack([np.pad(audio[s : s + WINDOW], (0, max(0, s + WINDOW - len(audio)))) for s in starts])
        voiced = windows[np.sqrt((windows**2).mean(axis=1)) > MIN_RMS]
        if len(voiced):
            means.append(model.embed_batched(voiced).mean(axis=0))
    return np.mean(means, axis=0) if means else None


def training_sources(
    data_root: Path, ami_files: Sequence[str], librispeech: str, ami: str
) -> tuple[list[Path], list[Path]]:
    """(AMI train excerpts, LibriSpeech training speakers) under `data_root`; refuses a missing root."""
    meetings = [data_root / ami / f"{name}.wav" for name in ami_files]
    meetings = [p for p in meetings if p.is_file()]
    speakers, _ = split_speakers(sorted((data_root / librispeech).glob("*.flac")))
    if not meetings and not speakers:
        raise BackgroundDataError(
            f"no training audio under {data_root} (AMI {ami}/, LibriSpeech {librispeech}/): the background mean "
            "is computed from it; set data_root or VOICEFLOW_SHARED_DATA"
        )
    return meetings, speakers[::4]


def background_mean(model: EmbeddingModel, meetings: Sequence[Path], speakers: Sequence[Path]) -> np.ndarray:
    means = [m for m in (set_mean(model, meetings), set_mean(model, speakers)) if m is not None]
    if not means:
        raise BackgroundDataError("no voiced training window to compute a background mean from")
    return np.mean(means, axis=0).astype(np.float32)


def checkpoint_background(exported: Path, training_config: dict[str, Any]) -> np.ndarray:
    """The background mean of an exported student (`exported`, not yet sealed with one), from the
    training audio its config names."""
    from pipelines.training.config import DataConfig, build_config

    data = build_config(DataConfig, dict(training_config.get("data", {})), "data")
    meetings, speakers = training_sources(data.root(), list(data.ami_files), data.librispeech, data.ami)
    return background_mean(EmbeddingModel.load(exported), meetings, speakers)


def stored_background(state: dict[str, Any], dimension: int) -> np.ndarray | None:
    """The background mean a checkpoint carries (computed at the end of training), when it fits."""
    value = state.get("background_mean")
    if value is None:
        return None
    mean = np.asarray(value, dtype=np.float32)
    return mean if mean.shape == (dimension,) and np.all(np.isfinite(mean)) else None
