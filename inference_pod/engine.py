"""The only module that calls the core engine (`voiceflow`): one seam, so the server code reads as
"feed audio, get segments" and a change in the engine's API is absorbed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

ENGINE_SAMPLE_RATE = 16000
# The engine is fed in blocks of exactly this many samples, counted from the stream's start,
# whatever the client's framing or the pod's merging of late steps: the same blocks as
# `voiceflow diarize --streaming` (voiceflow.cli.diarize.STREAM_CHUNK), so the pod's `final` is
# the CLI's output for the same audio, and results never depend on network framing.
FEED_SAMPLES = 8000
EmbedFn = Callable[[np.ndarray], np.ndarray]
SegmentFn = Callable[[np.ndarray], np.ndarray]


def vad_lockstep() -> tuple[Any, Callable[[list[Any]], list[Any]]]:
    """(owner, call) for batching streams' VAD frames: the shared Silero session and
    voiceflow.vad.run_lockstep over several streams' jobs."""
    from voiceflow.vad import SileroVAD, run_lockstep

    session = SileroVAD.shared_session()
    return session, lambda jobs: run_lockstep(session, jobs)


def load_embedding_model(path: str | None) -> Any:
    from voiceflow.embedding import EmbeddingModel

    return EmbeddingModel.load(path)


def engine_config(pipeline: str | None) -> Any:
    """The engine's default configuration with `pipeline` selected (None: the default pipeline):
    the same as the CLI's `voiceflow diarize [--streaming] --pipeline PIPELINE` without a config file."""
    from voiceflow.config import DEFAULT_PIPELINE, EngineConfig

    return EngineConfig(pipeline=pipeline or DEFAULT_PIPELINE)


def uses_segmentation_model(pipeline: str) -> bool:
    from voiceflow.config import uses_segmentation_model as uses

    return uses(pipeline)


def load_segmentation_model(pipeline: str, path: str | None) -> Any | None:
    """The segmentation model when `pipeline` needs one (None otherwise; None path = bundled default)."""
    from voiceflow.selection import load_segmentation_model as load

    return load(engine_config(pipeline), path)


def new_stream_session(
    model: Any,
    embed: EmbedFn,
    pipeline: str | None = None,
    segmentation_model: Any | None = None,
    segment: SegmentFn | None = None,
    vad: Callable[[Any], Any] | None = None,
) -> Any:
    """A streaming session whose embedding calls go through `embed` (the cross-session batcher),
    whose VAD frames (embedding pipelines) go through `vad` (a runner of voiceflow.vad jobs; None =
    the session runs its VAD itself) and, with the segmentation pipeline, whose network calls go
    through `segment` (chunks [B, T] -> hard activity [B, T // frame, S]; None = the session calls
    `segmentation_model` itself).

    Built by `voiceflow.selection.make_streaming_session`, like the CLI's `--streaming`, with the
    same default configuration and model-derived settings (background mean), so the pod's final
    equals the CLI's output. With the segmentation pipeline the session's segments may overlap
    (two speakers at once) and are identified by (speaker, start).
    """
    from voiceflow.selection import make_streaming_session

    config = engine_config(pipeline)
    return make_streaming_session(
        config, model, embed=embed, segmentation_model=segmentation_model, segment=segment, vad=vad
    )


def diarize(
    model: Any,
    audio: np.ndarray,
    num_speakers: int | None = None,
    pipeline: str | None = None,
    segmentation_model: Any | None = None,
) -> list[Any]:
    from voiceflow.selection import make_offline_diarizer

    diarizer = make_offline_diarizer(engine_config(pipeline), model, segmentation_model)
    return list(diarizer.diarize(audio, num_speakers=num_speakers))


def segment_key(segment: Any) -> tuple[str, float]:
    """What identifies a segment across results: (speaker, start). Segments of different speakers
    may share a start (overlapped speech, segmentation pipeline); a later result's view of the
    same key supersedes an earlier one (an open segment re-sent with a later end)."""
    return (str(segment.speaker), float(segment.start))


def decode_audio_bytes(data: bytes) -> np.ndarray:
    from voiceflow.audio import decode_audio_bytes as decode

    return np.asarray(decode(data, sample_rate=ENGINE_SAMPLE_RATE), dtype=np.float32)


def audio_error_types() -> tuple[type[BaseException], ...]:
    from voiceflow.audio import AudioError

    return (AudioError,)


def audio_too_large_types() -> tuple[type[BaseException], ...]:
    """The audio errors that are a size limit (413), not bad data (400)."""
    from voiceflow.audio import AudioTooLarge

    return (AudioTooLarge,)
