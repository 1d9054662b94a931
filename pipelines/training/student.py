"""The student speaker encoder: a compact 1-D residual conv net (ECAPA-lite) on log-mel frames.

Why this shape (see docs/pipelines.md): GE2E's 3-layer LSTM walks 160 frames one step at a time,
which is ~216 M multiply-adds per 1.6 s window and cannot use more than the width of one step.
A conv net sees all frames at once (one big GEMM per layer), halves time in its first layer
(stride 2) and pools with attentive statistics, so a 128-channel net costs ~35 M multiply-adds:
several times fewer, and friendlier to batching and INT8. Dilated residual blocks give it a
receptive field of ~0.5 s, enough for the speaker cues GE2E relies on; the pooled vector is
projected to GE2E's 256 dimensions so the teacher's embeddings are direct cosine targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from pipelines.nn.frontend import N_MELS


@dataclass(frozen=True)
class StudentSpec:
    """Architecture hyper-parameters, stored in every checkpoint so export can rebuild the net."""

    channels: int = 128
    blocks: int = 3
    embedding_dim: int = 256
    se_ratio: int = 8
    # "cmn": subtract each window's per-band mean (the first full run); "batch": a learned global
    # per-band normalisation (BatchNorm), which keeps the window's average spectral shape — a
    # speaker cue that per-window mean removal throws away on 1.6 s windows.
    input_norm: str = "cmn"
    # "ecapa" (the conv net below) or "lstm" (student_lstm.PooledLSTMEncoder: GE2E's encoder at a
    # lower frame rate, initialised from the teacher). The lstm_* fields apply only to "lstm".
    arch: str = "ecapa"
    frame_stride: int = 3
    lstm_layers: int = 3
    lstm_hidden: int = 256
    pooling: str = "mean"  # lstm: "mean" averages the frame_stride frames, "stack" concatenates them
    # lstm + stack: channels of a convolution over the 10 ms frames before the stacking (0 = none);
    # it starts as the identity, so the student starts exactly as the plain stacking one.
    conv_frontend: int = 0
    # K >= 2: trained to be read in K staggered streams, so `voiceflow export` writes the
    # per-frame model by default (pipelines.training.staggered); 0: a window model.
    streams: int = 0
    # With streams: seconds between segments when set (> 0), instead of the streams' window / (K - 1).
    segment_hop_seconds: float = 0.0

    def to_dict(self) -> dict[str, int | float | str]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> StudentSpec:
        """From a checkpoint's spec or a config's `student` section; older checkpoints lack `arch`."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def build_encoder(spec: StudentSpec) -> nn.Module:
    """The encoder a spec describes: mel power frames [B, frames, 40] -> embedding [B, D]."""
    if spec.arch == "ecapa":
        return StudentEncoder(spec)
    if spec.arch == "lstm":
        from pipelines.training.student_lstm import PooledLSTMEncoder

        return PooledLSTMEncoder(
            spec.frame_stride,
            spec.lstm_layers,
            spec.lstm_hidden,
            spec.embedding_dim,
            spec.pooling,
            conv_frontend=spec.conv_frontend,
        )
    raise ValueError(f"student arch must be 'ecapa' or 'lstm', not {spec.arch!r}")


class _SqueezeExcite(nn.Module):
    """Channel re-weighting from the window's mean: cheap (two tiny matmuls) and helps speaker nets."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, max(channels // ratio, 4))
        self.fc2 = nn.Linear(max(channels // ratio, 4), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=2)))))
        return x * scale.unsqueeze(2)


class _ResBlock(nn.Module):
    def __init__(self, channels: int, dilation: int, se_ratio: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm1d(channels)
        self.se = _SqueezeExcite(channels, se_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.se(self.bn2(self.conv2(y)))
        return torch.relu(x + y)


class _AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time (ECAPA's pooling)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(nn.Conv1d(channels, 64, 1), nn.Tanh(), nn.Conv1d(64, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.attention(x), dim=2)
        mean = torch.sum(x * weights, dim=2)
        var = torch.sum(x * x * weights, dim=2) - mean * mean
        std = torch.sqrt(torch.clamp(var, min=1e-6))
        return torch.cat([mean, std], dim=1)


class StudentEncoder(nn.Module):
    """mel power frames [B, frames, 40] -> L2-normalised embedding [B, embedding_dim].

    Takes the same input as GE2EEncoder (MelFrontend's linear mel power), so it plugs into
    WaveformEmbedder unchanged; the log and per-window mean normalisation live here.
    """

    def __init__(self, spec: StudentSpec | None = None) -> None:
        super().__init__()
        self.spec = spec or StudentSpec()
        c = self.spec.channels
        if self.spec.input_norm not in ("cmn", "batch"):
            raise ValueError(f"input_norm must be 'cmn' or 'batch', not {self.spec.input_norm!r}")
        self.input_bn = nn.BatchNorm1d(N_MELS) if self.spec.input_norm == "batch" else None
        self.stem = nn.Sequential(
            nn.Conv1d(N_MELS, c, 5, stride=2, padding=2, bias=False), nn.BatchNorm1d(c), nn.ReLU()
        )
        self.blocks = nn.Sequential(*[_ResBlock(c, d + 1, self.spec.se_ratio) for d in range(self.spec.blocks)])
        self.expand = nn.Sequential(nn.Conv1d(c, 2 * c, 1, bias=False), nn.BatchNorm1d(2 * c), nn.ReLU())
        self.pool = _AttentiveStatsPool(2 * c)
        self.head = nn.Linear(4 * c, self.spec.embedding_dim)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        # log compresses the dynamic range; then either per-window mean removal (cancels channel
        # colouring, but also the speaker's average spectrum) or a learned global normalisation.
        x = torch.log(mels + 1e-6).transpose(1, 2)
        x = self.input_bn(x) if self.input_bn is not None else x - x.mean(dim=2, keepdim=True)
        x = self.expand(self.blocks(self.stem(x)))
        raw = self.head(self.pool(x))
        return raw / torch.clamp(torch.linalg.vector_norm(raw, dim=1, keepdim=True), min=1e-12)
