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


def load_embedding_model(path: str | None) -> Any:
    from voiceflow.embedding import EmbeddingModel

    return EmbeddingModel.load(path)


def new_stream_session(model: Any, embed: EmbedFn) -> Any:
    """A streaming session whose embedding calls go through `embed` (the cross-session batcher)."""
    from voiceflow.streaming import StreamingSession

    # Same default configuration and model-derived settings (background mean) as the CLI's
    # `--streaming`, so the pod's final equals the CLI's output; `embed` is the batcher.
    return StreamingSession.for_model(model, embed=embed)


def diarize(model: Any, audio: np.ndarray, num_speakers: int | None = None) -> list[Any]:
    from voiceflow.pipeline import Diarizer

    return list(Diarizer(embedding_model=model).diarize(audio, num_speakers=num_speakers))


def decode_audio_bytes(data: bytes) -> np.ndarray:
    from voiceflow.audio import decode_audio_bytes as decode

    return np.asarray(decode(data, sample_rate=ENGINE_SAMPLE_RATE), dtype=np.float32)


def audio_error_types() -> tuple[type[BaseException], ...]:
    from voiceflow.audio import AudioError

    return (AudioError,)
