"""The recurrent student: GE2E's own LSTM encoder, run at a lower frame rate and fine-tuned.

Why (docs/pipelines.md, "The recurrent student"): the conv student had to learn GE2E's speaker
space from ~45 min of audio and never matched it on far-field meetings. This student starts
*inside* that space — its LSTM and projection are the teacher's weights — and only has to learn
to read coarser frames: mel power is averaged over `frame_stride` consecutive 10 ms frames, so a
1.6 s window is 54 LSTM steps instead of 160. An LSTM's cost is its number of sequential steps,
so that alone makes it ~2.7x faster in onnxruntime, while the teacher's init keeps the
embeddings close to GE2E's from the first step (distillation then closes the rest).
"""

from __future__ import annotations

import torch
from torch import nn

from pipelines.nn.frontend import N_MELS
from pipelines.nn.ge2e import normalised_head

POOLINGS = ("mean", "stack")


class PooledLSTMEncoder(nn.Module):
    """mel power frames [B, frames, 40] -> L2-normalised embedding [B, embedding_dim].

    Same input as GE2EEncoder (linear mel power, no log: the teacher's LSTM was trained on it),
    so it plugs into WaveformEmbedder unchanged.
    """

    def __init__(
        self,
        frame_stride: int = 3,
        layers: int = 3,
        hidden: int = 256,
        embedding_dim: int = 256,
        pooling: str = "mean",
        conv_frontend: int = 0,
    ) -> None:
        super().__init__()
        if frame_stride < 1 or layers < 1 or hidden < 1:
            raise ValueError("frame_stride, lstm_layers and lstm_hidden must be >= 1")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        if conv_frontend and (pooling != "stack" or conv_frontend < N_MELS):
            raise ValueError(f"conv_frontend needs pooling 'stack' and at least {N_MELS} channels (or 0 for none)")
        self.frame_stride = frame_stride
        self.pooling = pooling
        inputs = N_MELS * frame_stride if pooling == "stack" else N_MELS
        self.frontend = stacking_conv_frontend(conv_frontend, frame_stride) if conv_frontend else None
        self.lstm = nn.LSTM(inputs, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding_dim)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        return self.forward_with_sequence(mels)[0]

    def forward_with_sequence(self, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding [B, D], the last layer's output at every step [B, steps, hidden])."""
        k = self.frame_stride
        if self.frontend is not None:
            mels = self.frontend(mels.transpose(1, 2)).transpose(1, 2)
        elif k > 1 and self.pooling == "mean":
            # Averaging power (not dropping frames) keeps every 10 ms of the window in the input.
            mels = nn.functional.avg_pool1d(mels.transpose(1, 2), k, k).transpose(1, 2)
        elif k > 1:
            # "stack": k frames side by side, so the first layer can still weigh each 10 ms apart.
            steps = mels.shape[1] // k
            mels = mels[:, : steps * k].reshape(mels.shape[0], steps, k * N_MELS)
        sequence, (hidden, _) = self.lstm(mels)
        return normalised_head(self.linear, hidden[-1]), sequence


def stacking_conv_frontend(channels: int, stride: int) -> nn.Sequential:
    """mel power [B, 40, frames] -> [B, 40*stride, frames // stride], initialised to equal "stack".

    Why: the stride-3 student underfits GE2E (cosine ~0.94 on its own training batches), losing the
    10 ms detail GE2E's LSTM reads. A convolution at the full frame rate can pick that detail up
    before the frames are merged, at a few percent of the LSTM's cost. Its first layer starts as
    the identity on the 40 bands (mel power is >= 0, so the ReLU passes it) with its extra channels
    small and random; the second starts as the exact stacking of 3 frames and ignores the extra
    channels. Training moves both away from that only as far as the loss asks.
    """
    first = nn.Conv1d(N_MELS, channels, 5, padding=2)
    second = nn.Conv1d(channels, N_MELS * stride, stride, stride=stride)
    with torch.no_grad():
        first.weight.mul_(0.1)
        first.weight[:N_MELS].zero_()
        first.get_parameter("bias")[:N_MELS].zero_()
        first.weight[torch.arange(N_MELS), torch.arange(N_MELS), 2] = 1.0
        second.weight.zero_()
        second.get_parameter("bias").zero_()
        for offset in range(stride):  # output channel offset*40 + m is band m of the offset-th frame
            second.weight[offset * N_MELS + torch.arange(N_MELS), torch.arange(N_MELS), offset] = 1.0
    return nn.Sequential(first, nn.ReLU(), second)


def at_student_steps(teacher_sequence: torch.Tensor, stride: int) -> torch.Tensor:
    """The teacher's per-frame outputs [B, frames, H] at the frames where each student step ends.

    Student step t has read frames [0, (t+1)*stride), so the teacher's state after frame
    (t+1)*stride - 1 summarises exactly the same audio: a target for every step, not only
    the last one (FitNets-style hints: ~50x more supervision per crop than the embedding).
    """
    steps = teacher_sequence.shape[1] // stride
    return teacher_sequence[:, stride - 1 : steps * stride : stride]


def copy_teacher_weights(encoder: PooledLSTMEncoder, teacher: nn.Module) -> list[str]:
    """Copy every teacher tensor whose name and shape match (GE2E's LSTM layers and projection).

    With fewer layers the first ones are copied; with another width nothing of the LSTM is.
    A stacking student's first layer gets the teacher's input weights divided among the k
    stacked frames, so at initialisation it computes exactly the mean-pooling student.
    Returns the names copied, so a run can log (and a test check) what it started from.
    """
    own = encoder.state_dict()
    source = dict(teacher.state_dict())
    first = "lstm.weight_ih_l0"
    k = encoder.frame_stride
    if encoder.pooling == "stack" and first in source and own[first].shape[1] == source[first].shape[1] * k:
        source[first] = source[first].repeat(1, k) / k
    copied = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    own.update(copied)
    encoder.load_state_dict(own)
    return sorted(copied)
