"""Training a recurrent model to be read in K staggered streams (`student.streams`).

The engine can read a per-frame model over segments of R = 1.6 K / (K - 1) s that start every
R / K s, taking each 1.6 s window off the frame at its end (voiceflow.staggered): every frame is
then read K times instead of eight. GE2E was trained on lone windows, so read that way it hears
up to R / K s of audio before the window, and in 3 streams that costs it the AMI dev speakers
(docs/pipelines.md). This objective teaches the network exactly that reading: a training crop is
a whole segment, it goes through the network once, and at `loss.windows_per_segment` random window
ends inside the range a segment serves, [1.6 s, R), the per-frame embedding is pulled towards the
teacher's embedding of that 1.6 s window alone, heard through the same augmentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from pipelines.nn.frame_reader import FrameReader
from pipelines.nn.frontend import HOP_LENGTH
from pipelines.nn.ge2e import WaveformEmbedder
from pipelines.training.config import LIVE_TEACHER_CHOICES, LIVE_TEACHER_INPUTS, DataConfig, TrainConfig
from pipelines.training.data import SAMPLE_RATE, Dataset, crop_audio
from pipelines.training.metrics import equal_error_rate, mean_cosine
from voiceflow.staggered import frame_index, segment_layout

VALIDATION_ENDS = 4  # window ends read per held-out segment, spread over the serving range


@dataclass(frozen=True)
class StaggeredReading:
    window: int  # samples: the engine's embedding window (data.crop_seconds)
    streams: int
    segment: int  # samples: what a training crop is here
    frame_hop: int = HOP_LENGTH

    @classmethod
    def from_config(cls, config: TrainConfig) -> StaggeredReading | None:
        """The reading a config trains for; None for the ordinary one-window-per-crop objective."""
        check_staggered(config)
        return layout_of(config) if config.student.streams else None

    def data_config(self, data: DataConfig) -> DataConfig:
        """The dataset of segments: crops as long as a segment, on the config's grid."""
        return replace(data, crop_seconds=self.segment / SAMPLE_RATE)

    def serving_ends(self) -> np.ndarray:
        """Every window end (samples into a segment) the engine reads off a segment."""
        return np.arange(self.window, self.segment, self.frame_hop)

    def draw_ends(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return np.sort(rng.choice(self.serving_ends(), size=count, replace=False))

    def validation_ends(self) -> np.ndarray:
        serving = self.serving_ends()
        return serving[np.linspace(0, len(serving) - 1, VALIDATION_ENDS).round().astype(int)]

    def readouts(self, model: WaveformEmbedder, wave: torch.Tensor, ends: np.ndarray) -> torch.Tensor:
        """The model's embeddings [B * E, D] of every segment x window end, read as the engine reads them."""
        frames = FrameReader(model)(wave)
        index = torch.as_tensor(frame_index(ends, self.frame_hop, frames.shape[1]), device=frames.device)
        picked = frames[:, index]
        return picked.reshape(-1, picked.shape[-1])

    def windows(self, wave: torch.Tensor, ends: np.ndarray) -> torch.Tensor:
        """The lone windows [B * E, window] the teacher embeds, in the readouts' order."""
        return torch.stack([wave[:, e - self.window : e] for e in ends], dim=1).reshape(-1, self.window)

    def validate(
        self,
        model: WaveformEmbedder,
        teacher: torch.nn.Module,
        dataset: Dataset,
        labels: np.ndarray,
        device: torch.device,
        batch: int = 32,
    ) -> dict[str, float]:
        """Held-out speakers, clean: cosine of the readouts to the teacher's windows, and both EERs."""
        ends = self.validation_ends()
        student_out, teacher_out = [], []
        model.eval()
        with torch.inference_mode():
            for i in range(0, len(dataset.val), batch):
                crops = dataset.val[i : i + batch]
                wave = torch.from_numpy(np.stack([crop_audio(dataset, c) for c in crops])).to(device)
                student_out.append(self.readouts(model, wave, ends).cpu().numpy())
                teacher_out.append(teacher(self.windows(wave, ends)).cpu().numpy())
        model.train()
        if not student_out:
            return {"val_cos": float("nan"), "val_eer": float("nan"), "teacher_eer": float("nan")}
        emb, target = np.concatenate(student_out), np.concatenate(teacher_out)
        per_readout = np.repeat(labels, len(ends))
        return {
            "val_cos": mean_cosine(emb, target),
            "val_eer": equal_error_rate(emb, per_readout),
            "teacher_eer": equal_error_rate(target, per_readout),
        }


def check_staggered(config: TrainConfig) -> None:
    """Refuse configs the staggered objective cannot train, with the reason."""
    s, loss = config.student, config.loss
    if s.streams == 0:
        if s.segment_hop_seconds:
            raise ValueError("student.segment_hop_seconds lays out staggered segments: it needs student.streams >= 2")
        return
    if s.streams < 2:
        raise ValueError(f"student.streams must be 0 (read once per window) or at least 2, not {s.streams}")
    if s.arch != "lstm" or s.frame_stride != 1 or s.conv_frontend:
        raise ValueError("student.streams needs student.arch 'lstm' with frame_stride 1 and no conv_frontend")
    if loss.teacher_input not in LIVE_TEACHER_INPUTS:
        raise ValueError(
            f"student.streams needs loss.teacher_input {LIVE_TEACHER_CHOICES} (the teacher hears each window)"
        )
    if loss.sequence_weight or loss.centered_weight:
        raise ValueError("student.streams trains against windows: set loss.sequence_weight and centered_weight to 0")
    hop = s.segment_hop_seconds
    if not (math.isfinite(hop) and 0.0 <= hop <= config.data.crop_seconds):
        raise ValueError(f"student.segment_hop_seconds must be 0 (the streams' hop) to the window, not {hop}")
    if hop and segment_hop_samples(hop) < HOP_LENGTH:
        raise ValueError(f"student.segment_hop_seconds must be 0 or at least one frame ({HOP_LENGTH / SAMPLE_RATE} s)")
    served = len(layout_of(config).serving_ends())  # the draw's own range bounds the count
    if not 1 <= loss.windows_per_segment <= served:
        raise ValueError(f"loss.windows_per_segment must be 1..{served} for this segment layout")


def segment_hop_samples(seconds: float) -> int:
    """`student.segment_hop_seconds` in samples: what training lays segments out by and what the
    export writes as `segment_hop_samples` for the engine (0: the streams' own hop)."""
    return round(seconds * SAMPLE_RATE)


def layout_of(config: TrainConfig) -> StaggeredReading:
    """The segment layout of `student.streams` (K >= 2) and `segment_hop_seconds` over the config's
    window, unchecked."""
    window = round(config.data.crop_seconds * SAMPLE_RATE)
    segment, _ = segment_layout(window, config.student.streams, segment_hop_samples(config.student.segment_hop_seconds))
    return StaggeredReading(window, config.student.streams, segment)
