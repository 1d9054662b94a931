"""What every offline pipeline shares: its call shape, the speaker bounds' checks and the resampling.

`Diarizer` (voiceflow.pipeline) and `SegmentationDiarizer` (voiceflow.segmentation.offline) inherit
`diarize` and `diarize_file` from here and supply only the analysis of 16 kHz audio, so callers
choose a pipeline by configuration (voiceflow.selection) and get the same validation from each.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.audio import load_audio, resample
from voiceflow.clustering.labels import SpeakerBounds
from voiceflow.embedding import EmbeddingModel
from voiceflow.segments import Segment
from voiceflow.vad import Speech

ProgressCallback = Callable[[int, int], None]


class OfflineDiarizer(ABC):
    """An offline pipeline: a whole recording in, its speaker segments out."""

    embedding_model: EmbeddingModel

    def diarize(
        self,
        audio: np.ndarray,
        sample_rate: int = SAMPLE_RATE,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        progress: ProgressCallback | None = None,
        speech: Speech | None = None,
    ) -> list[Segment]:
        """`speech`: the recording's VAD speech at SAMPLE_RATE when it was computed already
        (`Diarizer.speech_per_recording`, for a batch of files); only a pipeline that takes its speech
        from that VAD accepts one."""
        bounds = SpeakerBounds(num_speakers, min_speakers, max_speakers)
        if sample_rate != SAMPLE_RATE:
            audio = resample(audio, sample_rate)
        return self.diarize_16k(audio, bounds, progress, speech)

    @abstractmethod
    def diarize_16k(
        self, audio: np.ndarray, bounds: SpeakerBounds, progress: ProgressCallback | None, speech: Speech | None
    ) -> list[Segment]:
        """The pipeline itself, on audio already at SAMPLE_RATE with checked bounds."""

    def diarize_file(self, path: str | Path, **kwargs: object) -> list[Segment]:
        return self.diarize(load_audio(path), SAMPLE_RATE, **kwargs)  # type: ignore[arg-type]
