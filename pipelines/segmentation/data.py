"""Training chunks for the segmentation model: voices + `voiceflow.simulate` chunk targets.

Two voice sources:
- "librispeech": the *training* side of the engine's fixed speaker split
  (`voiceflow.simulate.split_speakers`), validation from the held-out side, so validation
  speakers are never trained on.
- "synthetic": deterministic buzz-through-formant voices (a pitch, two formants and a syllable
  rate per voice), for tests and smoke runs that must not need ../shared/data. They are easy to
  tell apart by pitch, which is exactly what a smoke test needs: a learnable task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from voiceflow import SAMPLE_RATE
from voiceflow.simulate import ChunkConfig, frame_labels, load_sources, render_chunk, sample_chunk_turns, split_speakers


@dataclass(frozen=True)
class VoicePools:
    train: list[np.ndarray]
    val: list[np.ndarray]


def synthetic_voice(index: int, seconds: float = 8.0) -> np.ndarray:
    """A voice-like signal fixed by `index`: glottal buzz, two resonances, syllabic on/off."""
    rng = np.random.default_rng([index, 4242])
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(85.0, 280.0) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))  # intonation
    buzz = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / SAMPLE_RATE)) + 0.05 * rng.standard_normal(n)
    voice = buzz
    for formant in (rng.uniform(300, 900), rng.uniform(900, 2500)):
        voice = _resonator(voice, formant, bandwidth=120.0)
    # Syllables at 3-6 Hz with short silent gaps, so a turn has pauses inside like real speech.
    syllable = np.sin(2 * np.pi * rng.uniform(3.0, 6.0) * t + rng.uniform(0, 2 * np.pi))
    envelope = np.clip(syllable + 0.6, 0.0, None)
    voice = voice * envelope
    return (0.3 * voice / (np.abs(voice).max() + 1e-9)).astype(np.float32)


def _resonator(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    a = [1.0, -2 * r * np.cos(2 * np.pi * freq / SAMPLE_RATE), r * r]
    return np.asarray(lfilter([1.0 - r], a, x))


def synthetic_pools(train_voices: int, val_voices: int) -> VoicePools:
    """Disjoint voice indices: validation voices are never trained on."""
    return VoicePools(
        train=[synthetic_voice(i) for i in range(train_voices)],
        val=[synthetic_voice(100_000 + i) for i in range(val_voices)],
    )


def librispeech_pools(librispeech_dir: Path, max_train: int | None, val_voices: int) -> VoicePools:
    paths = sorted(Path(librispeech_dir).glob("*.flac"))
    train, held_out = split_speakers(paths)
    train_sources = load_sources(train[:max_train] if max_train else train)
    val_sources = load_sources(held_out[:val_voices])
    return VoicePools(
        train=[train_sources[k] for k in sorted(train_sources)], val=[val_sources[k] for k in sorted(val_sources)]
    )


def make_chunk(
    pool: list[np.ndarray], rng: np.random.Generator, config: ChunkConfig, snr_db: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(waveform [samples] float32, labels [frames, max_speakers] uint8) of one random chunk."""
    turns = sample_chunk_turns(rng, config)
    used = max((t.speaker for t in turns), default=-1) + 1
    voices = [pool[int(i)] for i in rng.choice(len(pool), size=used, replace=False)] if used else []
    audio, voiced = render_chunk(turns, voices, rng, config)
    labels = frame_labels(voiced, config.num_frames, config.max_speakers, config.frame_samples)
    # White noise at a random SNR relative to the chunk's speech (fixed level for silent chunks),
    # so silence is never digital zero — it never is at inference.
    power = float(np.mean(audio**2)) if labels.any() else 1e-3
    noise_db = rng.uniform(*snr_db)
    audio = audio + rng.standard_normal(len(audio)).astype(np.float32) * np.sqrt(power / 10 ** (noise_db / 10))
    return audio.astype(np.float32), labels


def make_batch(
    pool: list[np.ndarray], rng: np.random.Generator, size: int, config: ChunkConfig, snr_db: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    chunks = [make_chunk(pool, rng, config, snr_db) for _ in range(size)]
    return np.stack([c[0] for c in chunks]), np.stack([c[1] for c in chunks])
