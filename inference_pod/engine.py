"""The pod's seam to the core engine (`voiceflow`), and the only module that calls it: the server
code reads as "feed audio, get segments", and a change in the engine's API is absorbed here.

The seam is shaped like KServe's `Model`: a served model is loaded (and warmed) once, then answers
POST /infer with `predict` (a whole recording -> its segments) and each WebSocket stream with
`open_stream` (a `StreamSession`: `feed` audio -> the segments it updated, `finish` -> all of
them). `ServingModel` is that interface; `inference_pod.model_manager.LoadedModel` implements it
(`LoadedModel.load`) and swaps it on hot reload. Every type here is the engine's own, so the audio
path can be followed, by a reader and by mypy, from the socket to the JSON:

    PCM frame -> protocol.decode_pcm -> float32 at the client's rate
      -> stream.EngineStream (resample to 16 kHz; the session steps on its own clock)
      -> StreamSession.feed -> list[Segment] -> protocol.result_message -> JSON
    /infer body -> 16 kHz float32 -> ServingModel.predict -> list[Segment] -> JSON
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voiceflow.audio import AudioError, AudioTooLarge
from voiceflow.audio import decode_audio_bytes as _decode_audio_bytes
from voiceflow.config import EngineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.registry import DEFAULT_PIPELINE, pipeline_spec
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segmentation.streaming import EmbedFn, SegmentFn
from voiceflow.segments import Segment
from voiceflow.selection import StreamSession, make_offline_diarizer, make_streaming_session
from voiceflow.selection import load_segmentation_model as _load_segmentation_model
from voiceflow.vad import SileroVAD, VADJob, VADRunner

# The engine's types, named through the seam by the rest of the pod.
__all__ = [
    "ENGINE_SAMPLE_RATE",
    "EmbedFn",
    "EmbeddingModel",
    "EngineConfig",
    "Segment",
    "SegmentFn",
    "SegmentationModel",
    "ServingModel",
    "StreamRoutes",
    "StreamSession",
    "VADJob",
    "VADRunner",
]

ENGINE_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class StreamRoutes:
    """Where one stream's network calls go instead of straight to its models: the pod's
    cross-stream batchers, so one model call holds the rows of every stream that is waiting.

    `embed` and `segment` bind a batcher to the model the stream pinned (a stream keeps its model
    across a hot reload, so its calls never share a batch with another model's); `vad` runs a
    stream's VAD frames in one model call with the other streams' (voiceflow.vad.VADModel.run).
    """

    embed: Callable[[EmbeddingModel], EmbedFn]  # windows [B, T] -> embeddings [B, D]
    segment: Callable[[SegmentationModel], SegmentFn]  # chunks [B, T] -> hard activity [B, T // frame, S]
    vad: VADRunner


class ServingModel(Protocol):
    """A model the pod serves, loaded and warmed (LoadedModel.load): what /infer and each stream
    code against. Immutable: a hot reload serves a new one, and a stream keeps the one it started on."""

    @property
    def version(self) -> str: ...

    @property
    def bundle_digest(self) -> str: ...

    @property
    def pipeline(self) -> str: ...

    def predict(self, audio: np.ndarray, num_speakers: int | None = None) -> list[Segment]:
        """A whole recording (16 kHz float32 mono) -> its diarization, as `voiceflow diarize` gives."""
        ...

    def open_stream(self, routes: StreamRoutes | None = None) -> StreamSession:
        """A new live session on this model; its network calls go through `routes` (None: the
        session calls its models itself)."""
        ...


def shared_vad_run() -> tuple[object, Callable[[list[VADJob]], list[VADJob]]]:
    """(owner, call) for batching streams' VAD frames: the shared Silero model and its
    `VADModel.run` over several streams' jobs."""
    model = SileroVAD.shared_model()
    return model, model.run


def load_embedding_model(path: str | None) -> EmbeddingModel:
    return EmbeddingModel.load(path)


def engine_config() -> EngineConfig:
    """The engine's defaults with the default pipeline. A pod's own configuration is its settings'
    (`Settings.engine`: VOICEFLOW_ENGINE_CONFIG read as `voiceflow diarize --config` reads it, with
    VOICEFLOW_PIPELINE), so the pod gives what the CLI gives with the same file and pipeline."""
    return EngineConfig(pipeline=DEFAULT_PIPELINE)


def uses_segmentation_model(pipeline: str) -> bool:
    return pipeline_spec(pipeline).uses_segmentation_model


def load_segmentation_model(config: EngineConfig, path: str | None) -> SegmentationModel | None:
    """The segmentation model when `config`'s pipeline needs one (None otherwise; None path = bundled default)."""
    return _load_segmentation_model(config, path)


def new_stream_session(
    model: EmbeddingModel,
    config: EngineConfig | None = None,
    segmentation_model: SegmentationModel | None = None,
    routes: StreamRoutes | None = None,
) -> StreamSession:
    """A streaming session on `model` whose network calls go through `routes` (the pod's
    cross-stream batchers; None: the session calls its models itself). Embedding windows always
    route; the segmentation network's chunks route with the segmentation front end (chunks [B, T]
    -> hard activity [B, T // frame, S]), the VAD's frames with a VAD front end (voiceflow.vad
    jobs in one model run); embedding-overlap's detector only counts speakers and is called directly.
    A batch only ever holds inputs of one shape, so each stream gets exactly the rows an unbatched
    call would give it.

    Built by `voiceflow.selection.make_streaming_session`, like the CLI's `--streaming`, with the
    same configuration (`config`; None: the defaults) and model-derived settings (background mean),
    so the pod's final equals the CLI's output. With the segmentation pipeline the session's segments may overlap
    (two speakers at once) and are identified by (speaker, start).
    """
    config = config or engine_config()
    if routes is None:
        return make_streaming_session(config, model, segmentation_model=segmentation_model)
    network_frontend = pipeline_spec(config.pipeline).network_frontend
    segment = routes.segment(segmentation_model) if segmentation_model is not None and network_frontend else None
    vad = None if network_frontend else routes.vad
    return make_streaming_session(config, model, routes.embed(model), segmentation_model, segment, vad)


def diarize(
    model: EmbeddingModel,
    audio: np.ndarray,
    num_speakers: int | None = None,
    config: EngineConfig | None = None,
    segmentation_model: SegmentationModel | None = None,
) -> list[Segment]:
    diarizer = make_offline_diarizer(config or engine_config(), model, segmentation_model)
    return list(diarizer.diarize(audio, num_speakers=num_speakers))


def segment_key(segment: Segment) -> tuple[str, float]:
    """What identifies a segment across results: (speaker, start). Segments of different speakers
    may share a start (overlapped speech, segmentation pipeline); a later result's view of the
    same key supersedes an earlier one (an open segment re-sent with a later end)."""
    return (str(segment.speaker), float(segment.start))


def decode_audio_bytes(data: bytes) -> np.ndarray:
    return np.asarray(_decode_audio_bytes(data, sample_rate=ENGINE_SAMPLE_RATE), dtype=np.float32)


def audio_error_types() -> tuple[type[BaseException], ...]:
    return (AudioError,)


def audio_too_large_types() -> tuple[type[BaseException], ...]:
    """The audio errors that are a size limit (413), not bad data (400)."""
    return (AudioTooLarge,)
