"""The per-frame export of a recurrent embedding model, for staggered reading (voiceflow.staggered).

Same network, same front end, one more output axis: the embedding head applied to the last LSTM
layer's output at every 10 ms frame instead of only the last one. A window's embedding is the
frame at its end, so one pass over a segment serves every window that ends inside it.
"""

from __future__ import annotations

import torch
from torch import nn

from pipelines.nn.ge2e import GE2EEncoder, WaveformEmbedder, normalised_head
from pipelines.training.student_lstm import PooledLSTMEncoder

FRAMES_OUTPUT = "frames"


class FrameReader(nn.Module):
    """waveform [B, T] -> L2-normalised embedding at every frame [B, frames, D]."""

    def __init__(self, embedder: WaveformEmbedder) -> None:
        super().__init__()
        encoder = embedder.encoder
        if isinstance(encoder, PooledLSTMEncoder) and encoder.frame_stride != 1:
            raise ValueError("a per-frame export needs a stride-1 recurrent model (frames must be 10 ms apart)")
        if not isinstance(encoder, GE2EEncoder | PooledLSTMEncoder):
            raise ValueError(f"a per-frame export needs a recurrent encoder, not {type(encoder).__name__}")
        self.embedder = embedder

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        encoder = self.embedder.encoder
        assert isinstance(encoder, GE2EEncoder | PooledLSTMEncoder)
        _, sequence = encoder.forward_with_sequence(self.embedder.frontend(waveform))
        return normalised_head(encoder.linear, sequence)
