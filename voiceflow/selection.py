"""Pick the diarization pipeline by configuration: one place, used by the CLI, the harness and the pod."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from voiceflow import STREAM_FEED_SAMPLES
from voiceflow.blocks.embedding import EmbedFn
from voiceflow.config import EngineConfig
from voiceflow.diarizer import OfflineDiarizer
from voiceflow.embedding import EmbeddingModel
from voiceflow.pipeline import Diarizer
from voiceflow.registry import pipeline_spec
from voiceflow.segmentation.blocks import SegmentFn
from voiceflow.segmentation.model import SegmentationModel, default_overlap_model_path
from voiceflow.segmentation.offline import SegmentationDiarizer
from voiceflow.segmentation.streaming import SegmentationStreamingSession
from voiceflow.segments import Segment
from voiceflow.streaming import StreamingSession
from voiceflow.vad import SileroVAD, VADRunner


class StreamSession(Protocol):
    """A live session, whatever the pipeline (voiceflow.blocks.session.BlockSession: its step, its
    reports and its one rule for `final`): any chunking of the same audio gives the same result."""

    @property
    def duration(self) -> float: ...

    @property
    def num_speakers(self) -> int: ...

    def feed(self, samples: np.ndarray) -> list[Segment]: ...

    def flush(self) -> list[Segment]: ...

    def finish(self) -> list[Segment]: ...


def load_segmentation_model(config: EngineConfig, path: str | None = None) -> SegmentationModel | None:
    """The network the configured pipeline needs: the segmentation network, or embedding-overlap's
    detector (`path` overrides the config; None when the pipeline needs none)."""
    spec = pipeline_spec(config.pipeline)
    if spec.overlap_detector:
        return SegmentationModel.load(path or config.segmentation.overlap_model or default_overlap_model_path())
    if spec.network_frontend:
        return SegmentationModel.load(path or config.segmentation.model)
    return None


def make_offline_diarizer(
    config: EngineConfig, embedding_model: EmbeddingModel, segmentation_model: SegmentationModel | None = None
) -> OfflineDiarizer:
    network = segmentation_model or load_segmentation_model(config)
    if pipeline_spec(config.pipeline).network_frontend:
        return SegmentationDiarizer(config.segmentation.offline, embedding_model, network)
    return Diarizer(config.offline, embedding_model, overlap_model=network)


def make_streaming_session(
    config: EngineConfig,
    embedding_model: EmbeddingModel,
    embed: EmbedFn | None = None,
    segmentation_model: SegmentationModel | None = None,
    segment: SegmentFn | None = None,
    vad: VADRunner | None = None,
) -> StreamSession:
    """A live session on `embedding_model`; `embed` (and, for segmentation, `segment`: chunks ->
    hard local activity) and, for the embedding pipelines, `vad` (a VAD runner: voiceflow.vad.VADModel.run
    over several streams) may route through cross-session batchers.

    A pipeline with an overlap detector ("embedding-overlap") runs the embedding session with the
    detector's block composed in.
    """
    network = segmentation_model or load_segmentation_model(config)
    if pipeline_spec(config.pipeline).network_frontend:
        assert network is not None
        return SegmentationStreamingSession.for_model(
            embedding_model, network, embed, config.segmentation.streaming, segment
        )
    return StreamingSession.for_model(
        embedding_model, embed, config.streaming, overlap_model=network, vad=SileroVAD(runner=vad) if vad else None
    )


def stream_audio(
    audio: np.ndarray,
    model: EmbeddingModel,
    config: EngineConfig,
    segmentation_model: SegmentationModel | None = None,
) -> list[Segment]:
    """A whole recording through a live session, fed as a client would (STREAM_FEED_SAMPLES blocks;
    any chunking gives the same result): what `voiceflow diarize --streaming` prints and what the
    pod's `final` holds for the same audio."""
    session = make_streaming_session(config, model, segmentation_model=segmentation_model)
    for start in range(0, len(audio), STREAM_FEED_SAMPLES):
        session.feed(audio[start : start + STREAM_FEED_SAMPLES])
    return session.finish()
