"""Waveform augmentation of whole segmentation chunks, built on the embedding trainer's pieces.

`pipelines.training.augment` already loads the noise/RIR assets (resampled to 16 kHz, mixed to
mono, RIRs aligned to the direct path and energy-normalised) and implements reverberation and
additive noise; this module only decides what a *chunk* gets. Labels never change: reverberation
is applied to the mix and `reverberate` keeps the dry signal's timing (no pre-delay), noise and
gain add no speech. Per-speaker level differences are drawn earlier, in
`pipelines.simulation.render_chunk` (`level_spread_db`), where the speakers are still separate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.telephone import telephone
from pipelines.training.augment import AugmentAssets, add_noise, load_assets, reverberate

__all__ = ["AugmentAssets", "SegAugmentConfig", "augment_chunk", "load_assets", "no_assets"]


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

    @property
    def needs_assets(self) -> bool:
        return self.p_rir > 0 or self.p_noise > 0


def no_assets() -> AugmentAssets:
    return AugmentAssets([], [])


def load_chunk_assets(config: SegAugmentConfig, folder: Path) -> AugmentAssets:
    """The noise/RIR files when the config uses them; a config that does not needs no folder."""
    if not config.needs_assets:
        return no_assets()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing (set augment.p_rir and augment.p_noise to 0 to train without)")
    return load_assets(folder)


def augment_chunk(
    audio: np.ndarray, rng: np.random.Generator, config: SegAugmentConfig, assets: AugmentAssets
) -> np.ndarray:
    """One augmented copy of a chunk (same length). A draw is skipped when its assets are absent,
    so a config is usable without the files (the synthetic smoke run)."""
    y = audio.astype(np.float32, copy=True)
    if assets.rirs and rng.random() < config.p_rir:
        y = reverberate(y, assets.rirs[int(rng.integers(len(assets.rirs)))])
    if assets.noises and rng.random() < config.p_noise:
        noise = assets.noises[int(rng.integers(len(assets.noises)))]
        y = add_noise(y, noise, float(rng.uniform(*config.noise_snr_db)), rng)
    y = y * 10 ** (float(rng.uniform(*config.gain_db)) / 20)
    if config.p_telephone > 0 and rng.random() < config.p_telephone:
        y = telephone(y)
    return np.clip(y, -1.0, 1.0).astype(np.float32)
