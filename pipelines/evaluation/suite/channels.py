"""Channel effects for the dev suite: pure functions of (audio, parameters, rng) at 16 kHz.

Each one turns clean speech into what a channel makes of it; none touches the reference (the
ground truth is the dry sources' voiced activity, whatever the channel does to the audio).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

# The telephone channel is shared with the trainers (pipelines/telephone.py); re-exported here.
from pipelines.telephone import CODEC_PEAK as CODEC_PEAK
from pipelines.telephone import MU as MU
from pipelines.telephone import TELEPHONE_BAND as TELEPHONE_BAND
from pipelines.telephone import TELEPHONE_RATE as TELEPHONE_RATE
from pipelines.telephone import mu_law_round_trip as mu_law_round_trip
from pipelines.telephone import telephone as telephone
from voiceflow import SAMPLE_RATE


def power(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean square of `x`, over the samples of `mask` when given (e.g. where speech is active)."""
    part = x[mask] if mask is not None and mask.any() else x
    return float(np.mean(np.square(part, dtype=np.float64))) if part.size else 0.0


def tile_noise(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """`length` samples of `noise`, looped from a random start (short noise files repeat)."""
    if noise.size == 0:
        raise ValueError("empty noise signal")
    reps = int(np.ceil(length / noise.size)) + 1
    start = int(rng.integers(0, noise.size))
    return np.tile(noise, reps)[start : start + length]


def add_noise(
    speech: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    rng: np.random.Generator,
    speech_mask: np.ndarray | None = None,
) -> np.ndarray:
    """speech + noise scaled so that power(speech over `speech_mask`) / power(noise) = `snr_db`.

    The speech power is taken where speech is active: over the whole file, pauses would dilute
    it and the speech itself would sit under a worse SNR than the one asked for.
    """
    background = tile_noise(np.asarray(noise, dtype=np.float64), len(speech), rng)
    noise_power = power(background)
    if noise_power <= 0.0:
        raise ValueError("silent noise signal")
    scale = np.sqrt(power(speech, speech_mask) / (noise_power * 10 ** (snr_db / 10)))
    return (speech + scale * background).astype(np.float32)


def synthetic_rir(rng: np.random.Generator, rt60: float, direct_to_reverberant_db: float = 0.0) -> np.ndarray:
    """An exponentially decaying noise tail behind a unit direct path (Polack's statistical model).

    The tail's energy decays by 60 dB in `rt60` seconds; its total energy sits
    `direct_to_reverberant_db` below the direct path's, so the far-field character is controlled
    by two numbers a room is usually described by.
    """
    if not 0.05 <= rt60 <= 2.0:
        raise ValueError("rt60 must be within 0.05..2 s")
    length = int(rt60 * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 60 dB of amplitude
    predelay = int(rng.integers(int(0.002 * SAMPLE_RATE), int(0.01 * SAMPLE_RATE)))
    tail[:predelay] = 0.0
    tail *= np.sqrt(10 ** (-direct_to_reverberant_db / 10) / max(float(np.sum(tail**2)), 1e-12))
    tail[0] = 1.0
    return tail.astype(np.float32)


def normalise_rir(rir: np.ndarray) -> np.ndarray:
    """A measured response from its strongest tap on (the direct path), that tap scaled to 1."""
    rir = np.asarray(rir, dtype=np.float64)
    peak = int(np.argmax(np.abs(rir)))
    out = rir[peak:] / (abs(rir[peak]) or 1.0)
    return out.astype(np.float32)


def reverberate(speech: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """`speech` heard through `rir` (direct path at tap 0), cut to the speech's length."""
    return fftconvolve(speech, rir)[: len(speech)].astype(np.float32)


def level_gains(rng: np.random.Generator, count: int, spread_db: float, force_extremes: bool = False) -> np.ndarray:
    """Linear gains, one per speaker, uniform within +-`spread_db`.

    `force_extremes` puts one speaker at +spread and one at -spread (the level-imbalance condition:
    a near and a far talker, 2 * spread apart); the others stay random.
    """
    db = rng.uniform(-spread_db, spread_db, size=count)
    if force_extremes and count >= 2:
        loud, quiet = rng.choice(count, size=2, replace=False)
        db[loud], db[quiet] = spread_db, -spread_db
    return (10 ** (db / 20)).astype(np.float64)


def peak_normalise(audio: np.ndarray, peak: float = 0.9) -> np.ndarray:
    """Scale to `peak` full scale when louder (a mix of loud talkers must not clip)."""
    top = float(np.max(np.abs(audio))) if audio.size else 0.0
    return (audio * (peak / top) if top > peak else audio).astype(np.float32)
