"""Voice activity detection with Silero VAD v5 run through onnxruntime (no torch).

The model is recurrent: 512-sample chunks at 16 kHz with 64 samples of context from the
previous chunk and a [2, 1, 128] state, exactly as silero-vad's own OnnxWrapper drives it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnxruntime as ort

from voiceflow import SAMPLE_RATE
from voiceflow.embedding import MODELS_DIR, session_options

CHUNK = 512
CONTEXT = 64
FRAME_SECONDS = CHUNK / SAMPLE_RATE  # 32 ms per VAD frame
DEFAULT_VAD_MODEL = MODELS_DIR / "silero_vad.onnx"


@dataclass(frozen=True)
class VADConfig:
    threshold: float = 0.5
    neg_threshold: float | None = None  # hysteresis: speech ends below this (default threshold - 0.15)
    min_speech_seconds: float = 0.25
    min_silence_seconds: float = 0.1
    speech_pad_seconds: float = 0.03

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("VAD threshold must be in (0, 1)")
        for name in ("min_speech_seconds", "min_silence_seconds", "speech_pad_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    @property
    def off_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


class SileroVAD:
    """Stateful frame-probability model; one instance per stream (state is per stream)."""

    _sessions: ClassVar[dict[Path, ort.InferenceSession]] = {}

    def __init__(self, model_path: Path = DEFAULT_VAD_MODEL) -> None:
        # Sessions are immutable and thread-safe to run: share one per model file across streams.
        if model_path not in SileroVAD._sessions:
            SileroVAD._sessions[model_path] = ort.InferenceSession(
                str(model_path), sess_options=session_options(1), providers=["CPUExecutionProvider"]
            )
        self.session = SileroVAD._sessions[model_path]
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability for each complete 32 ms frame now available."""
        audio = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        n_frames = len(audio) // CHUNK
        probs = np.empty(n_frames, dtype=np.float32)
        for i in range(n_frames):
            chunk = audio[i * CHUNK : (i + 1) * CHUNK][None, :]
            x = np.concatenate([self._context, chunk], axis=1)
            out, self._state = self.session.run(None, {"input": x, "state": self._state, "sr": self._sr})
            self._context = x[:, -CONTEXT:]
            probs[i] = float(out.reshape(-1)[0])
        self._pending = audio[n_frames * CHUNK :].copy()
        return probs

    @property
    def pending_samples(self) -> int:
        return int(self._pending.size)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        self.reset()
        return self.feed(audio)


def probabilities_to_mask(probs: np.ndarray, config: VADConfig) -> np.ndarray:
    """Frame-level boolean speech mask with hysteresis, min durations and padding (pure)."""
    speaking = False
    mask = np.zeros(len(probs), dtype=bool)
    for i, p in enumerate(probs):
        speaking = p >= config.off_threshold if speaking else p >= config.threshold
        mask[i] = speaking
    mask = fill_short_runs(mask, value=False, max_frames=round(config.min_silence_seconds / FRAME_SECONDS))
    mask = fill_short_runs(mask, value=True, max_frames=round(config.min_speech_seconds / FRAME_SECONDS) - 1)
    pad = round(config.speech_pad_seconds / FRAME_SECONDS)
    if pad > 0 and mask.any():
        padded = mask.copy()
        for shift in range(1, pad + 1):
            padded[shift:] |= mask[:-shift]
            padded[:-shift] |= mask[shift:]
        mask = padded
    return mask


def fill_short_runs(mask: np.ndarray, value: bool, max_frames: int) -> np.ndarray:
    """Flip interior runs of `value` no longer than `max_frames` (gaps closed, blips dropped)."""
    if max_frames <= 0 or mask.size == 0:
        return mask
    out = mask.copy()
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [mask.size]])
    for start, end in itertools.pairwise(bounds):
        # Silence at either edge is not a gap, and speech still running at the end is not a blip.
        interior = not ((value is False and (start == 0 or end == mask.size)) or (value is True and end == mask.size))
        if mask[start] == value and end - start <= max_frames and interior:
            out[start:end] = not value
    return out


def speech_regions(mask: np.ndarray, frame_seconds: float = FRAME_SECONDS) -> list[tuple[float, float]]:
    regions: list[tuple[float, float]] = []
    if mask.size == 0:
        return regions
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [mask.size]])
    for start, end in itertools.pairwise(bounds):
        if mask[start]:
            regions.append((start * frame_seconds, end * frame_seconds))
    return regions
