"""Streaming overlap-aware diarization (diart-style): the segmentation network's blocks composed.

Every `step_seconds` of audio (a hop), the last `chunk` of the stream (5 s, shorter at the very
start) goes through the segmentation network; each local speaker gets one embedding from the audio
where it talks alone; the incremental constrained clustering maps local speakers to global ones
(never two of one chunk to the same speaker, labels never change); the chunk's activity on global
speakers joins the rolling set of chunk outputs. Frames older than `latency_seconds` are then
decided by the same overlap-add + speaker-count reconstruction as the offline pipeline, over the
chunks that covered them, and become segments — two at once where two people talk.

The session interface (steps, reports, the rule for `final`) is `voiceflow.blocks.session.BlockSession`'s,
as the embedding pipeline's, so the CLI and the inference pod drive either by configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.blocks.audio import RollingAudio
from voiceflow.blocks.base import Block
from voiceflow.blocks.embedding import EmbedFn
from voiceflow.blocks.session import BlockSession
from voiceflow.clustering.constrained import ConstrainedOnlineClusterer, ConstrainedOnlineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.segmentation.blocks import (
    ChunkClustering,
    ChunkHop,
    DelayedAggregation,
    LocalSegmentation,
    LocalSpeakerEmbedding,
    SegmentFn,
    SpeakerRuns,
)
from voiceflow.segmentation.local_embeddings import LocalEmbeddingConfig
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segments import Segment

__all__ = ["EmbedFn", "SegmentFn", "SegmentationStreamingConfig", "SegmentationStreamingSession"]


@dataclass(frozen=True)
class SegmentationStreamingConfig:
    step_seconds: float = 0.5
    latency_seconds: float = 5.0  # how long a frame waits for later chunks before it is decided
    # One embedding window per local speaker and step: the stream's cost is dominated by it.
    local: LocalEmbeddingConfig = field(default_factory=lambda: LocalEmbeddingConfig(max_windows=1))
    clustering: ConstrainedOnlineConfig = field(default_factory=ConstrainedOnlineConfig)

    def __post_init__(self) -> None:
        if not 0.1 <= self.step_seconds <= 5.0:
            raise ValueError("step_seconds must be within 0.1..5")
        if not self.step_seconds <= self.latency_seconds <= 30.0:
            raise ValueError("latency_seconds must be within step_seconds..30")


class SegmentationStreamingSession(BlockSession):
    """segmentation -> local speaker embeddings -> constrained online clustering -> delayed
    aggregation, on a hop of `step_seconds`; the decided frames become segments at every step of
    the session."""

    def __init__(
        self,
        embed: EmbedFn,
        segmentation_model: SegmentationModel,
        config: SegmentationStreamingConfig | None = None,
        background_mean: np.ndarray | None = None,
        segment: SegmentFn | None = None,
    ) -> None:
        super().__init__()
        self.config = config or SegmentationStreamingConfig()
        self.segmentation_model = segmentation_model
        self.background_mean = background_mean
        frame = segmentation_model.frame_samples
        self.frame = frame
        self.chunk_samples = segmentation_model.chunk_samples
        self.hop_samples = max(frame, round(self.config.step_seconds * SAMPLE_RATE / frame) * frame)
        self.audio = RollingAudio()
        self.segmentation = LocalSegmentation(segment or (lambda chunks: segmentation_model.activity(chunks).hard))
        self.embedding = LocalSpeakerEmbedding(embed, frame, self.config.local, background_mean)
        self.clustering = ChunkClustering(ConstrainedOnlineClusterer(self.config.clustering), frame)
        self.aggregation = DelayedAggregation(self.clustering, round(self.config.latency_seconds * SAMPLE_RATE / frame))
        self.blocks: tuple[Block[ChunkHop], ...] = (
            self.segmentation,
            self.embedding,
            self.clustering,
            self.aggregation,
        )
        self.runs = SpeakerRuns(frame / SAMPLE_RATE)
        self._hopped_until = 0  # stream sample where the last chunk ended

    @classmethod
    def for_model(
        cls,
        model: EmbeddingModel,
        segmentation_model: SegmentationModel,
        embed: EmbedFn | None = None,
        config: SegmentationStreamingConfig | None = None,
        segment: SegmentFn | None = None,
    ) -> SegmentationStreamingSession:
        """A session on both models; `embed` and `segment` may route through cross-session batchers."""
        return cls(embed or model.embed, segmentation_model, config, model.background_mean, segment)

    @property
    def num_speakers(self) -> int:
        return self.clustering.clusterer.num_speakers

    def _step(self, audio: np.ndarray) -> list[Segment]:
        self.audio.append(audio)
        while self._hopped_until + self.hop_samples <= self.audio.end:
            self._hop(self._hopped_until + self.hop_samples)
        active = self.aggregation.decide()
        return [] if active is None else self.runs.extend(active)

    def _close(self, tail: np.ndarray) -> None:
        self.audio.append(tail)
        whole = (self.audio.end // self.frame) * self.frame
        if whole > self._hopped_until and whole >= self.frame * 4:
            self._hop(whole)  # the partial last hop
        active = self.aggregation.decide(closing=True)
        assert active is not None
        self.runs.extend(active, closing=True)

    def _result(self) -> list[Segment]:
        return sorted(self.runs.closed, key=lambda s: (s.start, s.end, s.speaker))

    def _hop(self, end: int) -> None:
        start = max(0, end - self.chunk_samples)
        hop = ChunkHop(start, self.audio.window(start, end))
        for block in self.blocks:
            block(hop)
        self._hopped_until = end
        # Keep the audio the next chunk needs (the last hop may end one frame later), no more.
        self.audio.forget_before(max(0, end + self.frame - self.chunk_samples))
