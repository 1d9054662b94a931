"""Voice activity detection with Silero VAD v5 run through onnxruntime (no torch).

The model reads 512-sample frames at 16 kHz, each with the previous 64 samples as context, and
carries a [2, B, 128] LSTM state, exactly as silero-vad's own OnnxWrapper drives it. Only the
LSTM is recurrent, so the engine runs the model as its two halves (pipelines.export.silero_split
writes them from the bundled `silero_vad.onnx`): the convolutional encoder over every frame of a
call at once, then the LSTM decoder over those frames as one sequence. Two calls per stream step
or per recording instead of one per 32 ms frame: the probabilities are the source model's to
within 1e-5, and identical whatever the chunking or the streams batched together (tests).
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
from voiceflow.validation import require_seconds

CHUNK = 512
CONTEXT = 64
STATE_SIZE = 128
SILERO_SAMPLE_RATE = 16000  # the one branch of the source model the engine runs
FRAME_SECONDS = CHUNK / SAMPLE_RATE  # 32 ms per VAD frame
DEFAULT_VAD_MODEL = MODELS_DIR / "silero_vad.onnx"
# Frames per encoder call, and per decoder call and stream: bound a long recording's memory (~8 MB of
# features per 16384 frames, 8.7 minutes); results do not depend on them (tests).
ENCODER_ROWS = 4096
SEQUENCE_FRAMES = 16384

# One stream's VAD work: (frames [n, CHUNK], state [2, 1, 128], context [1, CONTEXT]) ->
# (probabilities [n], state, context) after those frames.
VADJob = tuple[np.ndarray, np.ndarray, np.ndarray]
VADRunner = Callable[[VADJob], VADJob]


def split_model_paths(source: Path) -> tuple[Path, Path]:
    """Where the two halves of a Silero model file live: beside it, `<stem>.encoder.onnx` and
    `<stem>.decoder.onnx`."""
    return source.with_name(f"{source.stem}.encoder.onnx"), source.with_name(f"{source.stem}.decoder.onnx")


class VADModel:
    """The two halves of a Silero model, as onnxruntime sessions (immutable, thread-safe to run)."""

    def __init__(self, encoder: ort.InferenceSession, decoder: ort.InferenceSession) -> None:
        self.encoder = encoder
        self.decoder = decoder

    @classmethod
    def load(cls, source: Path = DEFAULT_VAD_MODEL) -> VADModel:
        encoder_path, decoder_path = split_model_paths(source)
        for path in (encoder_path, decoder_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} is missing: `python -m pipelines.export.silero_split --source {source}`"
                )
        options = session_options(1)
        return cls(
            ort.InferenceSession(str(encoder_path), sess_options=options, providers=["CPUExecutionProvider"]),
            ort.InferenceSession(str(decoder_path), sess_options=options, providers=["CPUExecutionProvider"]),
        )

    def run(self, jobs: Sequence[VADJob]) -> list[VADJob]:
        """Several streams' frames at once: encoder calls of about ENCODER_ROWS frames for all their
        frames, one decoder call with a row per stream (per SEQUENCE_FRAMES of them, the state carried
        on). Each stream's result is bit for bit what a call of its own gives, however its frames are
        split across calls (tests)."""
        longest = max((len(frames) for frames, _, _ in jobs), default=0)
        if longest <= SEQUENCE_FRAMES:
            return self._run_sequences(jobs)
        pieces: list[list[np.ndarray]] = [[] for _ in jobs]
        current = list(jobs)
        for start in range(0, longest, SEQUENCE_FRAMES):
            stage = [(frames[start : start + SEQUENCE_FRAMES], state, context) for frames, state, context in current]
            done = self._run_sequences(stage)
            for i, (probs, state, context) in enumerate(done):
                pieces[i].append(probs)
                current[i] = (jobs[i][0], state, context)
        return [
            (np.concatenate(probs), state, context) for probs, (_, state, context) in zip(pieces, current, strict=True)
        ]

    def _run_sequences(self, jobs: Sequence[VADJob]) -> list[VADJob]:
        lengths = np.array([len(frames) for frames, _, _ in jobs], dtype=np.int32)
        running = [i for i, n in enumerate(lengths) if n]
        results: list[VADJob] = [(np.empty(0, dtype=np.float32), state, context) for _, state, context in jobs]
        if not running:
            return results
        features = self._encode([jobs[i] for i in running])
        steps = int(lengths.max())
        sequences = np.zeros((steps, len(running), STATE_SIZE), dtype=np.float32)
        offset = 0
        for row, i in enumerate(running):
            sequences[: lengths[i], row] = features[offset : offset + lengths[i]]
            offset += lengths[i]
        state = np.concatenate([jobs[i][1] for i in running], axis=1)
        probabilities, state = self.decoder.run(
            None, {"features": sequences, "state": state, "lengths": lengths[running]}
        )
        for row, i in enumerate(running):
            frames = jobs[i][0]
            results[i] = (
                probabilities[: lengths[i], row].copy(),
                state[:, row : row + 1].copy(),
                np.array(frames[-1:, -CONTEXT:], dtype=np.float32),
            )
        return results

    def _encode(self, jobs: Sequence[VADJob]) -> np.ndarray:
        """The encoder's features of every frame of `jobs`, in order, in calls of ENCODER_ROWS to
        2 x ENCODER_ROWS frames (rows are built per call, so a long recording is never copied whole)."""
        calls: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        size = 0
        for frames, _, context in jobs:
            for start in range(0, len(frames), ENCODER_ROWS):
                piece = frames[start : start + ENCODER_ROWS]
                before = context if start == 0 else frames[start - 1 : start, -CONTEXT:]
                # each frame with the 64 samples before it: the carried context, then its own frames' tails
                rows = np.concatenate(
                    [np.concatenate([before, piece[:-1, -CONTEXT:]]), piece], axis=1, dtype=np.float32
                )
                pending.append(rows)
                size += len(piece)
                if size >= ENCODER_ROWS:
                    calls.append(self.encoder.run(None, {"input": np.concatenate(pending)})[0])
                    pending, size = [], 0
        if pending:
            calls.append(self.encoder.run(None, {"input": np.concatenate(pending)})[0])
        return np.concatenate(calls)


def recording_probabilities(model: VADModel, recordings: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each whole recording's frame probabilities, all of them in one `VADModel.run`: what
    `SileroVAD().probabilities` gives each alone, bit for bit (tests)."""
    if not recordings:
        return []
    jobs = []
    for audio in recordings:
        frames = len(audio) // CHUNK
        samples = np.asarray(audio[: frames * CHUNK], dtype=np.float32)
        jobs.append((samples.reshape(frames, CHUNK), _fresh_state(), _fresh_context()))
    return [probs for probs, _, _ in model.run(jobs)]


def _fresh_state() -> np.ndarray:
    return np.zeros((2, 1, STATE_SIZE), dtype=np.float32)


def _fresh_context() -> np.ndarray:
    return np.zeros((1, CONTEXT), dtype=np.float32)


@dataclass(frozen=True)
class VADConfig:
    # Chosen on the dev suite by cross-validation over thresholds, padding and minimum silence
    # (docs/evaluation.md, "The VAD's settings"): a speaker's pauses under a second are speech in
    # human references, and Silero's own defaults (0.5, 30 ms padding, 0.1 s silence) cut them out.
    threshold: float = 0.4
    neg_threshold: float | None = None  # hysteresis: speech ends below this (default threshold - 0.15)
    min_speech_seconds: float = 0.25
    min_silence_seconds: float = 0.3
    speech_pad_seconds: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("VAD threshold must be in (0, 1)")
        # Speech ends below neg_threshold: at 0 it never ends once begun, above threshold the
        # hysteresis is inverted.
        if self.neg_threshold is not None and not 0.0 < self.neg_threshold <= self.threshold:
            raise ValueError("neg_threshold must be in (0, threshold]")
        # NaN or inf failed every recording; a huge padding or minimum ran for ever or made all of
        # a recording speech (or none of it).
        require_seconds(self, "min_speech_seconds", "min_silence_seconds", "speech_pad_seconds")

    @property
    def off_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


class SileroVAD:
    """Stateful frame-probability model; one instance per stream (state is per stream)."""

    _models: ClassVar[dict[Path, VADModel]] = {}

    def __init__(self, model_path: Path = DEFAULT_VAD_MODEL, runner: VADRunner | None = None) -> None:
        self.model = SileroVAD.shared_model(model_path)
        # How frames reach the model: here, or through a server's cross-stream batcher
        # (`VADModel.run` over several streams' jobs); the results are the same either way.
        self.runner = runner or (lambda job: self.model.run([job])[0])
        self.reset()

    @staticmethod
    def shared_model(model_path: Path = DEFAULT_VAD_MODEL) -> VADModel:
        """One model per file, shared by all streams."""
        if model_path not in SileroVAD._models:
            SileroVAD._models[model_path] = VADModel.load(model_path)
        return SileroVAD._models[model_path]

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


@dataclass(frozen=True)
class Speech:
    """A recording's speech, per VAD frame: `mask`, what the pipeline treats as speech (the VAD's
    rules: short pauses bridged, edges padded), and `heard`, what the hysteresis alone called
    speech. A pause inside `mask` is where `heard` is False: the offline pipeline gives it back as
    silence where the speaker changes (segments.silence_between_speakers)."""

    mask: np.ndarray
    heard: np.ndarray

    @classmethod
    def of_mask(cls, mask: np.ndarray) -> Speech:
        """A mask from elsewhere, with no pause known inside its speech."""
        return cls(mask, mask)


def speech_frames(probs: np.ndarray, config: VADConfig) -> Speech:
    """The speech mask (hysteresis, min durations and padding) and what the hysteresis heard (pure)."""
    speaking = False
    heard = np.zeros(len(probs), dtype=bool)
    on, off = config.threshold, config.off_threshold  # once, not per frame: this runs every stream step
    for i, p in enumerate(probs):
        speaking = p >= off if speaking else p >= on
        heard[i] = speaking
    mask = fill_short_runs(heard, value=False, max_frames=round(config.min_silence_seconds / FRAME_SECONDS))
    mask = fill_short_runs(mask, value=True, max_frames=round(config.min_speech_seconds / FRAME_SECONDS) - 1)
    pad = round(config.speech_pad_seconds / FRAME_SECONDS)
    if pad > 0 and mask.any():
        padded = mask.copy()
        for shift in range(1, pad + 1):
            padded[shift:] |= mask[:-shift]
            padded[:-shift] |= mask[shift:]
        mask = padded
    return Speech(mask, heard)


def probabilities_to_mask(probs: np.ndarray, config: VADConfig) -> np.ndarray:
    """Frame-level boolean speech mask with hysteresis, min durations and padding (pure)."""
    return speech_frames(probs, config).mask


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
