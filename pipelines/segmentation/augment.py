"""Waveform augmentation of whole segmentation chunks, built on the embedding trainer's pieces.

`pipelines.training.augment` already loads the noise/RIR assets (resampled to 16 kHz, mixed to
mono, RIRs aligned to the direct path and energy-normalised) and implements reverberation and
additive noise; this module only decides what a *chunk* gets. Labels never change: reverberation
is applied to the mix and `reverberate` keeps the dry signal's timing (no pre-delay), noise and
gain add no speech. Per-speaker level differences are drawn earlier, in
`pipelines.simulation.render_chunk` (`level_spread_db`), where the speakers are still separate.

A room per speaker (`p_speaker_rooms`, issue 24): in a meeting each talker sits elsewhere, so
each simulated speaker's track goes through its own impulse response (measured or synthetic) at
its own distance before the mix (`speaker_rooms`), and the mix is then not reverberated again.
The labels stay the dry voiced activity, as the dev suite's reference does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

from pipelines.telephone import telephone
from pipelines.training.augment import AugmentAssets, add_noise, load_assets, reverberate, synthetic_rir
from voiceflow import SAMPLE_RATE

__all__ = [
    "AugmentAssets",
    "SegAugmentConfig",
    "at_distance",
    "augment_chunk",
    "load_assets",
    "no_assets",
    "speaker_rooms",
]

DIRECT_PATH_SECONDS = 0.0025  # the taps of an aligned RIR taken as the direct sound


@dataclass(frozen=True)
class SegAugmentConfig:
    p_rir: float = 0.3  # reverberate the whole chunk with a random room impulse response
    p_noise: float = 0.5  # add a random stretch of a real noise recording
    noise_snr_db: tuple[float, float] = (0.0, 25.0)  # relative to the chunk (speech + noise floor)
    gain_db: tuple[float, float] = (-18.0, 6.0)  # overall level; the chunk is then clipped to [-1, 1]
    level_spread_db: float = 6.0  # each simulated speaker's level: uniform +-spread dB
    # a narrowband call (the dev suite's telephone channel: 300-3400 Hz, 8 kHz, G.711 mu-law),
    # applied last, after noise: the codec sees what the line carries
    p_telephone: float = 0.0
    # A room and a distance per simulated speaker, before the mix (0 = today: the mix is
    # reverberated as one by p_rir). A chunk that gets them skips the mix's RIR.
    p_speaker_rooms: float = 0.0
    p_synthetic_room: float = 0.5  # a speaker's room is synthetic (else a measured RIR, when loaded)
    room_rt60_s: tuple[float, float] = (0.2, 0.9)  # synthetic rooms' reverberation time
    room_drr_db: tuple[float, float] = (0.0, 9.0)  # synthetic rooms' direct-to-reverberant ratio at 1 m
    distance_m: tuple[float, float] = (0.5, 3.0)  # talker to microphone: the direct path falls as 1/d

    @property
    def needs_assets(self) -> bool:
        measured_rooms = self.p_speaker_rooms > 0 and self.p_synthetic_room < 1
        return self.p_rir > 0 or self.p_noise > 0 or measured_rooms


def no_assets() -> AugmentAssets:
    return AugmentAssets([], [])


def load_chunk_assets(config: SegAugmentConfig, folder: Path) -> AugmentAssets:
    """The noise/RIR files when the config uses them; a config that does not needs no folder."""
    if not config.needs_assets:
        return no_assets()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing (set augment.p_rir and augment.p_noise to 0 to train without)")
    return load_assets(folder)


def at_distance(rir: np.ndarray, distance_m: float) -> np.ndarray:
    """An aligned RIR (direct path first) heard from `distance_m` metres: the direct sound scaled
    to 1 at 1 m and by 1/d, the reverberant tail left as it is (a diffuse field is about as loud
    anywhere in a room). So a far talker is both quieter and more reverberant."""
    out = np.asarray(rir, dtype=np.float64) / (abs(float(rir[0])) or 1.0)
    direct = max(int(DIRECT_PATH_SECONDS * SAMPLE_RATE), 1)
    out[:direct] /= distance_m
    return out.astype(np.float32)


def speaker_rooms(
    tracks: np.ndarray, rng: np.random.Generator, config: SegAugmentConfig, assets: AugmentAssets
) -> np.ndarray:
    """Each speaker's track [speakers, samples] through its own room at its own distance
    (same shape; the reverberant tail past the chunk's end is cut)."""
    out = np.zeros_like(tracks, dtype=np.float32)
    for s, track in enumerate(tracks):
        if assets.rirs and rng.random() >= config.p_synthetic_room:
            rir = assets.rirs[int(rng.integers(len(assets.rirs)))]
        else:
            rir = synthetic_rir(rng, config.room_rt60_s, config.room_drr_db)
        rir = at_distance(rir, float(rng.uniform(*config.distance_m)))
        out[s] = fftconvolve(track, rir)[: tracks.shape[1]]
    return out


def augment_chunk(
    audio: np.ndarray,
    rng: np.random.Generator,
    config: SegAugmentConfig,
    assets: AugmentAssets,
    reverberated: bool = False,
) -> np.ndarray:
    """One augmented copy of a chunk (same length). A draw is skipped when its assets are absent,
    so a config is usable without the files (the synthetic smoke run). A chunk whose speakers
    already have their rooms (`reverberated`) gets no second one."""
    y = audio.astype(np.float32, copy=True)
    if not reverberated and assets.rirs and rng.random() < config.p_rir:
        y = reverberate(y, assets.rirs[int(rng.integers(len(assets.rirs)))])
    if assets.noises and rng.random() < config.p_noise:
        noise = assets.noises[int(rng.integers(len(assets.noises)))]
        y = add_noise(y, noise, float(rng.uniform(*config.noise_snr_db)), rng)
    y = y * 10 ** (float(rng.uniform(*config.gain_db)) / 20)
    if config.p_telephone > 0 and rng.random() < config.p_telephone:
        y = telephone(y)
    return np.clip(y, -1.0, 1.0).astype(np.float32)
