"""The speech block: where the stream has speech, on the VAD's 32 ms frame grid."""

from __future__ import annotations

import numpy as np

from voiceflow.blocks.base import Block, FrameHop
from voiceflow.vad import CHUNK, SileroVAD, VADConfig, speech_frames

CONTEXT_FRAMES = 64  # ~2 s of probabilities behind a hop for its VAD post-processing


class SpeechBlock(Block[FrameHop]):
    """Silero probabilities as audio arrives (causal); at each hop, when the hop's frames are all
    known, the offline VAD rules (padding, gap filling, blip removal) over the hop and its recent
    context, not just causal hysteresis."""

    def __init__(self, vad: SileroVAD, config: VADConfig) -> None:
        self.vad = vad
        self.config = config
        self._probs: list[float] = []
        self._speech: list[bool] = []  # refined, set when a frame's hop is run

    @property
    def frames(self) -> int:
        """Frames whose probability is known."""
        return len(self._probs)

    @property
    def padding(self) -> int:
        """Silence that completes the VAD's partial last frame at the end of a stream (0: none)."""
        partial = self.vad.pending_samples
        return CHUNK - partial if partial else 0

    def feed(self, audio: np.ndarray) -> None:
        probs = self.vad.feed(audio)
        self._probs.extend(float(p) for p in probs)
        self._speech.extend([False] * len(probs))

    def fraction(self, start: int, end: int) -> float:
        """The share of refined speech among frames [start, end)."""
        return float(np.mean(self._speech[start:end]))

    def __call__(self, hop: FrameHop) -> None:
        lo = max(0, hop.start - CONTEXT_FRAMES)
        refined = speech_frames(np.array(self._probs[lo : hop.end], dtype=np.float32), self.config)
        hop.speech, hop.heard = refined.mask[hop.start - lo :], refined.heard[hop.start - lo :]
        self._speech[hop.start : hop.end] = hop.speech.tolist()
