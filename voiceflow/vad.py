"""Voice activity detection with Silero VAD v5 run through onnxruntime (no torch).

The model is recurrent: 512-sample chunks at 16 kHz with 64 samples of context from the
previous chunk and a [2, 1, 128] state, exactly as silero-vad's own OnnxWrapper drives it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
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
_SR = np.array(SAMPLE_RATE, dtype=np.int64)

# One stream's VAD work: (frames [n, CHUNK], state [2, 1, 128], context [1, CONTEXT]) ->
# (probabilities [n], state, context) after those frames.
VADJob = tuple[np.ndarray, np.ndarray, np.ndarray]
VADRunner = Callable[[VADJob], VADJob]


def run_lockstep(session: ort.InferenceSession, jobs: Sequence[VADJob]) -> list[VADJob]:
    """Several streams' frames through the model in lockstep: frame t of every stream that has
    one is a single call with one row per stream (the state's batch axis keeps them apart).

    A stream's frames are sequential (the model is recurrent), but streams are independent:
    a server with many streams makes ~16 calls per 0.5 s step for all of them, not 16 per
    stream. Each row's result is bit-for-bit what a call of its own gives (tests)."""
    count = len(jobs)
    if count == 1:  # one stream (offline files, an unbatched session): the plain loop, no gathering
        return [_run_one(session, *jobs[0])]
    lengths = np.array([len(job[0]) for job in jobs])
    steps = int(lengths.max(initial=0))
    frames = np.zeros((steps, count, CHUNK), dtype=np.float32)  # [t, stream]: frame t of each stream
    for i, job in enumerate(jobs):
        frames[: lengths[i], i] = job[0]
    state = np.concatenate([job[1] for job in jobs], axis=1)
    context = np.concatenate([job[2] for job in jobs], axis=0)
    probs = np.zeros((count, steps), dtype=np.float32)
    for t in range(steps):
        active = lengths > t
        if active.all():
            x = np.concatenate([context, frames[t]], axis=1)
            out, state = session.run(None, {"input": x, "state": state, "sr": _SR})
            context = x[:, -CONTEXT:]
            probs[:, t] = out.reshape(-1)
        else:
            x = np.concatenate([context[active], frames[t, active]], axis=1)
            out, state[:, active] = session.run(None, {"input": x, "state": state[:, active], "sr": _SR})
            context[active] = x[:, -CONTEXT:]
            probs[active, t] = out.reshape(-1)
    return [(probs[i, : lengths[i]], state[:, i : i + 1].copy(), context[i : i + 1].copy()) for i in range(count)]


def recording_probabilities(session: ort.InferenceSession, recordings: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each whole recording's frame probabilities, all of them stepped through the model in lockstep
    (one call per frame index for every recording still running): what `SileroVAD().probabilities`
    gives each alone, bit for bit (tests), for about half the CPU with 4 recordings at once.

    The model is recurrent, so one recording's frames are sequential; the per-call overhead is what
    several recordings share (a call of one row costs ~2.5x a row of a call of 8)."""
    if not recordings:
        return []
    jobs = []
    for audio in recordings:
        frames = len(audio) // CHUNK
        samples = np.asarray(audio[: frames * CHUNK], dtype=np.float32)
        jobs.append((samples.reshape(frames, CHUNK), _fresh_state(), _fresh_context()))
    return [probs for probs, _, _ in run_lockstep(session, jobs)]


def _fresh_state() -> np.ndarray:
    return np.zeros((2, 1, 128), dtype=np.float32)


def _fresh_context() -> np.ndarray:
    return np.zeros((1, CONTEXT), dtype=np.float32)


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


def _run_one(session: ort.InferenceSession, frames: np.ndarray, state: np.ndarray, context: np.ndarray) -> VADJob:
    probs = np.empty(len(frames), dtype=np.float32)
    for t in range(len(frames)):
        x = np.concatenate([context, frames[t : t + 1]], axis=1)
        out, state = session.run(None, {"input": x, "state": state, "sr": _SR})
        context = x[:, -CONTEXT:]
        probs[t] = out.reshape(-1)[0]
    return probs, state, context


class SileroVAD:
    """Stateful frame-probability model; one instance per stream (state is per stream)."""

    _sessions: ClassVar[dict[Path, ort.InferenceSession]] = {}

    def __init__(self, model_path: Path = DEFAULT_VAD_MODEL, runner: VADRunner | None = None) -> None:
        self.session = SileroVAD.shared_session(model_path)
        # How frames reach the model: here, or through a server's cross-stream batcher
        # (`run_lockstep` over several streams' jobs); the results are the same either way.
        self.runner = runner or (lambda job: run_lockstep(self.session, [job])[0])
        self.reset()

    @staticmethod
    def shared_session(model_path: Path = DEFAULT_VAD_MODEL) -> ort.InferenceSession:
        """Sessions are immutable and thread-safe to run: one per model file, shared by all streams."""
        if model_path not in SileroVAD._sessions:
            SileroVAD._sessions[model_path] = ort.InferenceSession(
                str(model_path), sess_options=session_options(1), providers=["CPUExecutionProvider"]
            )
        return SileroVAD._sessions[model_path]

    def reset(self) -> None:
        self._state = _fresh_state()
        self._context = _fresh_context()
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probability for each complete 32 ms frame now available."""
        audio = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        n_frames = len(audio) // CHUNK
        self._pending = audio[n_frames * CHUNK :].copy()
        if n_frames == 0:
            return np.empty(0, dtype=np.float32)
        frames = audio[: n_frames * CHUNK].reshape(n_frames, CHUNK)
        probs, self._state, self._context = self.runner((frames, self._state, self._context))
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
    on, off = config.threshold, config.off_threshold  # once, not per frame: this runs every stream step
    for i, p in enumerate(probs):
        speaking = p >= off if speaking else p >= on
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
