"""The embedding block: one speaker embedding of the audio behind a hop."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from voiceflow.blocks.audio import RollingAudio
from voiceflow.blocks.base import Block, FrameHop
from voiceflow.blocks.speech import SpeechBlock
from voiceflow.vad import CHUNK

# windows [B, T] -> embeddings [B, D]; injectable so a server can batch across sessions.
EmbedFn = Callable[[np.ndarray], np.ndarray]
MIN_WINDOW_SAMPLES = 400  # shorter audio (the stream's first instants) is not embedded


class WindowEmbedding(Block[FrameHop]):
    """At each hop with speech, one embedding of the last `window_frames` of audio, when that window
    holds at least `min_speech` of speech (a full window) or is long enough: too little speech
    embeds unreliably, and then the hop gets none. The background mean, when given, is taken off:
    the direction all embeddings share otherwise dominates the cosine between different speakers
    (see scripts/background_mean.py)."""

    def __init__(
        self,
        embed: EmbedFn,
        audio: RollingAudio,
        speech: SpeechBlock,
        window_frames: int,
        min_speech: float,
        background_mean: np.ndarray | None = None,
    ) -> None:
        self.embed = embed
        self.audio = audio
        self.speech = speech
        self.window_frames = window_frames
        self.min_speech = min_speech
        self.background_mean = background_mean
        self.context_samples = window_frames * CHUNK

    def __call__(self, hop: FrameHop) -> None:
        hop.embedding = None
        if not hop.speech.any():
            return
        window_start = max(0, hop.end - self.window_frames)
        window_speech = self.speech.fraction(window_start, hop.end)
        stop = hop.end * CHUNK
        window = self.audio.window(max(self.audio.start, stop - self.context_samples), stop)
        too_little = window_speech < self.min_speech and hop.end - window_start >= self.window_frames
        if too_little or window.size < MIN_WINDOW_SAMPLES:
            return
        embedding = self.embed(window[None, :])[0]
        hop.embedding = embedding if self.background_mean is None else embedding - self.background_mean
