"""Waveform augmentation for training crops: overlap, reverberation, noise, gain, telephone.

Pure functions of (audio, rng, assets): the caller derives the rng from (seed, epoch, step),
which is what makes a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from pipelines.telephone import telephone
from pipelines.training.config import AugmentConfig
from pipelines.training.data import SAMPLE_RATE, read_audio


@dataclass(frozen=True)
class AugmentAssets:
    noises: list[np.ndarray]
    rirs: list[np.ndarray]


def load_assets(folder: Path) -> AugmentAssets:
    """Noise and RIR files (any rate/channels: read_audio resamples and mixes down)."""
    noises = [read_audio(p) for p in sorted((folder / "noise").glob("*")) if p.suffix in (".wav", ".ogg", ".flac")]
    rirs = []
    for p in sorted((folder / "rir").glob("*")):
        if p.suffix not in (".wav", ".flac"):
            continue
        rir = read_audio(p)
        peak = int(np.argmax(np.abs(rir)))
        rir = rir[peak:]  # start at the direct path so reverberation adds no delay to the crop
        rirs.append((rir / (np.sqrt(np.sum(rir**2)) + 1e-9)).astype(np.float32))
    return AugmentAssets([n for n in noises if len(n) > 0], [r for r in rirs if len(r) > 0])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2) + 1e-12))


def add_overlap(x: np.ndarray, other: np.ndarray, rel_db: float) -> np.ndarray:
    """Mix a second speaker in at `rel_db` below the first: the student should still track the first."""
    return x + other * (rms(x) / rms(other) * 10 ** (rel_db / 20))


def speaker_turn(x: np.ndarray, other: np.ndarray, cut: int) -> np.ndarray:
    """`other` speaks the first `cut` samples, at `x`'s level, and `x` the rest: a turn change.

    Why: a staggered reading (pipelines.training.staggered) hears up to 0.8 s before each window,
    and in a meeting that history is often the previous speaker. Trained only on one-speaker
    crops, the network learns to lean on that history, which blends two speakers' windows.
    """
    cut = min(max(cut, 0), len(x), len(other))
    if cut == 0:
        return x
    head = other[:cut] * (rms(x[cut:]) / rms(other[:cut])) if cut < len(x) else other[:cut]
    return np.concatenate([head, x[cut:]]).astype(np.float32)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    wet = fftconvolve(x, rir)[: len(x)]
    return (wet * (rms(x) / rms(wet))).astype(np.float32)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    if len(noise) < len(x):
        noise = np.tile(noise, int(np.ceil(len(x) / len(noise))))
    start = int(rng.integers(0, len(noise) - len(x) + 1))
    seg = noise[start : start + len(x)]
    return x + seg * (rms(x) / rms(seg) * 10 ** (-snr_db / 20))


@dataclass(frozen=True)
class Room:
    """One acoustic setting (reverberation, noise kind and level) that several crops can share."""

    rir: np.ndarray | None
    noise: np.ndarray | None
    snr_db: float


def synthetic_rir(
    rng: np.random.Generator, rt60_range: tuple[float, float], drr_db_range: tuple[float, float]
) -> np.ndarray:
    """A room impulse response drawn from the statistical model of late reverberation.

    Direct path, then Gaussian noise under an exponential envelope that falls 60 dB in RT60
    seconds (Polack's model), low-passed by a random one-pole filter so the tail is darker
    than the direct sound, as absorbing walls make it. Eight recorded RIRs are eight rooms; this
    is any number, so a student cannot learn the rooms instead of the voices.
    """
    from scipy.signal import lfilter

    rt60 = float(rng.uniform(*rt60_range))
    n = max(int(rt60 * SAMPLE_RATE), 160)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    pole = float(rng.uniform(0.0, 0.8))
    tail = lfilter([1.0 - pole], [1.0, -pole], tail)
    tail[: int(rng.uniform(0.002, 0.008) * SAMPLE_RATE)] = 0.0  # first reflections arrive a few ms late
    drr = 10 ** (float(rng.uniform(*drr_db_range)) / 10)  # direct-to-reverberant energy ratio
    tail *= np.sqrt(1.0 / (drr * float(np.sum(tail**2)) + 1e-12))
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


def draw_rir(rng: np.random.Generator, config: AugmentConfig, assets: AugmentAssets) -> np.ndarray | None:
    if rng.random() >= config.p_rir:
        return None
    if config.p_synthetic_rir > 0 and (not assets.rirs or rng.random() < config.p_synthetic_rir):
        return synthetic_rir(rng, config.rt60_s, config.drr_db)
    return assets.rirs[int(rng.integers(len(assets.rirs)))] if assets.rirs else None


def draw_room(rng: np.random.Generator, config: AugmentConfig, assets: AugmentAssets) -> Room:
    rir = draw_rir(rng, config, assets)
    noise, snr = None, 0.0
    if assets.noises and rng.random() < config.p_noise:
        noise, snr = assets.noises[int(rng.integers(len(assets.noises)))], float(rng.uniform(*config.snr_db))
    return Room(rir, noise, snr)


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play `x` `factor` times faster (tempo and pitch together), keeping its length.

    Resampling shifts the voice's pitch and formants: a new pseudo-voice for distillation, which
    needs no labels since the teacher embeds the changed audio itself. A sped-up crop is short
    by at most a few frames and is completed cyclically.
    """
    import soxr

    y = soxr.resample(x.astype(np.float32), factor, 1.0).astype(np.float32)
    if len(y) >= len(x):
        return y[: len(x)]
    return np.concatenate([y, y[: len(x) - len(y)]]) if len(y) else np.zeros_like(x)


def voice(
    x: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig,
    other: np.ndarray | None = None,
) -> np.ndarray:
    """What is said in crop `x`: its speed, a turn change, an overlapping speaker; no channel yet.

    Split from `channel` so a teacher can hear the crop dry (loss.teacher_input "dry") while the
    student hears it through the channel: the student then learns what the teacher hears on a
    clean line, not the teacher's own telephone or far-field geometry.
    """
    y = x.astype(np.float32, copy=True)
    if config.p_speed > 0 and rng.random() < config.p_speed:
        y = change_speed(y, float(rng.uniform(*config.speed)))
    if other is not None and config.p_turn > 0 and rng.random() < config.p_turn:
        y = speaker_turn(y, other, round(float(rng.uniform(*config.turn_seconds)) * SAMPLE_RATE))
    if other is not None and rng.random() < config.p_overlap:
        y = add_overlap(y, other, float(rng.uniform(*config.overlap_db)))
    return y


def channel(
    y: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig,
    assets: AugmentAssets,
    room: Room | None = None,
) -> np.ndarray:
    """Crop `y` through a channel: room, noise, gain, then a telephone line (the codec hears what
    the line carries, noise included, as in the dev suite's telephone stratum)."""
    return channel_stages(y, rng, config, assets, room)[1]


def channel_stages(
    y: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig,
    assets: AugmentAssets,
    room: Room | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`channel`'s result before the telephone line (room, noise, gain: what a wideband line carries)
    and after it, from the same draws: a teacher can hear the first (loss.teacher_input "wideband")
    while the student hears the second."""
    room = room or draw_room(rng, config, assets)
    if room.rir is not None:
        y = reverberate(y, room.rir)
    if room.noise is not None:
        y = add_noise(y, room.noise, room.snr_db, rng)
    y = y * 10 ** (float(rng.uniform(*config.gain_db)) / 20)
    clipped = np.clip(y, -1.0, 1.0)
    wideband = clipped.astype(np.float32)
    # drawn only when enabled, so older configs keep their draws bit for bit
    if config.p_telephone > 0 and rng.random() < config.p_telephone:
        return wideband, np.clip(telephone(clipped), -1.0, 1.0).astype(np.float32)
    return wideband, wideband


def augment(
    x: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig,
    assets: AugmentAssets,
    other: np.ndarray | None = None,
    room: Room | None = None,
) -> np.ndarray:
    """One augmented copy of crop `x`; `other` is a crop of a different speaker for overlap.

    `room` puts the crop in a given room (shared with other crops of the batch); without one
    the crop gets its own reverberation and noise draws.
    """
    return channel(voice(x, rng, config, other), rng, config, assets, room)
