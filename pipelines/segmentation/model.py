"""The frame-level segmentation network: waveform chunk -> powerset log-probabilities per frame.

    waveform [B, T] 16 kHz
    -> MelFrontend (conv STFT, in the graph like every exported VoiceFlow model)  [B, T//160+1, 40]
    -> log, per-chunk mean/variance normalisation per mel band
    -> Conv1d k5 stride 2 (10 ms -> 20 ms frames) -> Conv1d k3        [B, C, frames]
    -> 2-layer BiLSTM                                                 [B, frames, 2H]
    -> Linear -> ReLU -> Linear -> log_softmax over the 7 powerset classes

Why this shape: the convolutions are cheap local feature extraction and the stride halves the
LSTM's sequential steps; the BiLSTM sees the whole ~5 s chunk in both directions, which is what
deciding "same voice as 2 s ago" needs (PyanNet, pyannote's segmentation model, is the same
idea with SincNet in front). The output is log-softmax so the loss is a gather, and ONNX
consumers can exp() it into class probabilities.

Frames: the mel front end gives T//160 + 1 centred 10 ms frames; the last (padding-only) frame
is dropped, and the stride-2 convolution makes (T//160 + 1) // 2 frames — exactly T / 320 for a
chunk that is a whole number of 20 ms frames, matching `pipelines.simulation.frame_labels`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from pipelines.nn.frontend import HOP_LENGTH, N_MELS, MelFrontend
from pipelines.segmentation.count import COUNT_CLASSES
from pipelines.segmentation.powerset import MAX_SIMULTANEOUS, MAX_SPEAKERS, num_classes

STFT_MODE = "conv"  # same spectrum as torch.stft, but one GEMM in onnxruntime (see frontend.py)


@dataclass(frozen=True)
class SegmentationSpec:
    """Architecture hyper-parameters (stored in checkpoints so a model can be rebuilt)."""

    channels: int = 64
    lstm_hidden: int = 96
    lstm_layers: int = 2
    head_hidden: int = 64
    max_speakers: int = MAX_SPEAKERS
    max_simultaneous: int = MAX_SIMULTANEOUS
    # "powerset": which of up to 3 local speakers talk (7 classes); "count": how many talk,
    # 0 / 1 / 2+ (the overlap detector of pipelines/segmentation/count.py).
    task: str = "powerset"

    def __post_init__(self) -> None:
        if self.task not in ("powerset", "count"):
            raise ValueError(f"model.task must be 'powerset' or 'count', not {self.task!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def classes(self) -> int:
        return COUNT_CLASSES if self.task == "count" else num_classes(self.max_speakers, self.max_simultaneous)


def num_frames(num_samples: int) -> int:
    """Output frames for a chunk of `num_samples` samples (see the module docstring)."""
    return (num_samples // HOP_LENGTH + 1) // 2


class SegmentationModel(nn.Module):
    """waveform [B, T] float32 16 kHz -> log-probabilities [B, num_frames(T), classes]."""

    def __init__(self, spec: SegmentationSpec = SegmentationSpec()) -> None:
        super().__init__()
        self.spec = spec
        self.frontend = MelFrontend(normalize_volume=True, stft=STFT_MODE)
        self.conv = nn.Sequential(
            nn.Conv1d(N_MELS, spec.channels, kernel_size=5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(spec.channels, spec.channels, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.lstm = nn.LSTM(
            spec.channels, spec.lstm_hidden, num_layers=spec.lstm_layers, batch_first=True, bidirectional=True
        )
        self.head = nn.Sequential(
            nn.Linear(2 * spec.lstm_hidden, spec.head_hidden),
            nn.ReLU(),
            nn.Linear(spec.head_hidden, spec.classes),
        )

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, 40, T//160] normalised log-mel (the frame dropped is padding only)."""
        mel = self.frontend(waveform)[:, :-1]  # [B, frames, 40]
        logmel = torch.log(mel + 1e-6)
        # Per chunk and band: removes level and channel colour, which carry no speaker-turn cue.
        mean = logmel.mean(dim=1, keepdim=True)
        std = logmel.std(dim=1, keepdim=True) + 1e-5
        return ((logmel - mean) / std).transpose(1, 2)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        hidden = self.conv(self.features(waveform)).transpose(1, 2)  # [B, frames, C]
        hidden, _ = self.lstm(hidden)
        return torch.log_softmax(self.head(hidden), dim=-1)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
