"""Simulated conversations with exact speech-only references, built from single-speaker audio.

Each conversation draws 2-4 speakers, cuts their utterances into turns, and lays the turns out
with pauses and occasional overlaps. The reference marks only where each source turn is voiced
(an energy mask on the clean source), so pauses inside a turn are not counted as speech.
Everything follows from the seed: the same seed always gives the same audio and reference.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.audio import load_audio
from voiceflow.segments import Segment, merge_adjacent

ENERGY_FRAME = 160  # 10 ms


@dataclass(frozen=True)
class SimulationConfig:
    min_speakers: int = 2
    max_speakers: int = 4
    duration_seconds: float = 45.0
    min_turn_seconds: float = 1.0
    max_turn_seconds: float = 6.0
    mean_pause_seconds: float = 0.4
    overlap_probability: float = 0.15
    max_overlap_seconds: float = 1.0
    level_spread_db: float = 6.0
    noise_snr_db: float | None = 30.0


@dataclass
class Conversation:
    uri: str
    audio: np.ndarray
    reference: list[Segment]
    speakers: list[str]


def speaker_of(path: Path) -> str:
    return path.name.split("-")[0]


def split_speakers(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """A fixed split by speaker id: every 5th speaker (sorted) is held out for evaluation.

    Training code must use only the first list; dev conversations use only the second, so a
    model is never scored on voices it was trained on.
    """
    ordered = sorted(paths, key=lambda p: int(speaker_of(p)) if speaker_of(p).isdigit() else 0)
    held_out = [p for i, p in enumerate(ordered) if i % 5 == 0]
    train = [p for i, p in enumerate(ordered) if i % 5 != 0]
    return train, held_out


def voiced_mask(samples: np.ndarray, floor_db: float = 35.0) -> np.ndarray:
    """10 ms frames within `floor_db` of the loud speech level, with 200 ms gaps bridged."""
    n = len(samples) // ENERGY_FRAME
    if n == 0:
        return np.zeros(0, dtype=bool)
    frames = samples[: n * ENERGY_FRAME].reshape(n, ENERGY_FRAME)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    # Relative to the utterance's loud level, but never below an absolute floor (digital silence).
    mask = energy_db > max(float(np.percentile(energy_db, 95)) - floor_db, -70.0)
    gap = 20
    idx = np.flatnonzero(mask)
    if idx.size:
        for a, b in itertools.pairwise(idx):
            if 1 < b - a <= gap:
                mask[a:b] = True
    return mask


def _voiced_segments(mask: np.ndarray, offset: float, speaker: str) -> list[Segment]:
    segs: list[Segment] = []
    step = ENERGY_FRAME / SAMPLE_RATE
    idx = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    for s, e in zip(idx[0::2], idx[1::2], strict=True):
        segs.append(Segment(offset + s * step, offset + e * step, speaker))
    return segs


def simulate_conversation(
    sources: dict[str, np.ndarray],
    seed: int,
    config: SimulationConfig = SimulationConfig(),
    uri: str | None = None,
    noise: np.ndarray | None = None,
) -> Conversation:
    """Lay out turns from `sources` (speaker -> clean 16 kHz audio) into one conversation."""
    rng = np.random.default_rng(seed)
    names = sorted(sources)
    k = int(rng.integers(config.min_speakers, config.max_speakers + 1))
    chosen = [names[i] for i in rng.choice(len(names), size=min(k, len(names)), replace=False)]
    gains = {s: 10 ** (rng.uniform(-config.level_spread_db, config.level_spread_db) / 20) for s in chosen}
    cursor = {s: 0 for s in chosen}
    total = int(config.duration_seconds * SAMPLE_RATE)
    audio = np.zeros(total + SAMPLE_RATE * 10, dtype=np.float32)
    reference: list[Segment] = []
    t = 0
    previous: str | None = None
    while t < total:
        speaker = chosen[int(rng.integers(len(chosen)))]
        if speaker == previous and len(chosen) > 1:
            speaker = chosen[(chosen.index(speaker) + 1 + int(rng.integers(len(chosen) - 1))) % len(chosen)]
        source = sources[speaker]
        length = int(rng.uniform(config.min_turn_seconds, config.max_turn_seconds) * SAMPLE_RATE)
        if cursor[speaker] + length > len(source):
            cursor[speaker] = 0
        turn = source[cursor[speaker] : cursor[speaker] + length] * gains[speaker]
        cursor[speaker] += length
        audio[t : t + len(turn)] += turn
        reference.extend(_voiced_segments(voiced_mask(turn), t / SAMPLE_RATE, speaker))
        previous = speaker
        if rng.random() < config.overlap_probability:
            t += len(turn) - int(rng.uniform(0.2, config.max_overlap_seconds) * SAMPLE_RATE)
        else:
            t += len(turn) + int(rng.exponential(config.mean_pause_seconds) * SAMPLE_RATE)
        t = max(t, 0)
    end = max(int(max(seg.end for seg in reference) * SAMPLE_RATE), 1)
    audio = audio[: max(end, total)]
    if config.noise_snr_db is not None:
        speech_power = float(np.mean(audio**2)) + 1e-10
        background = _tile(noise, len(audio), rng) if noise is not None else rng.standard_normal(len(audio))
        background = background / (np.sqrt(np.mean(background**2)) + 1e-10)
        audio = audio + background.astype(np.float32) * np.sqrt(speech_power / 10 ** (config.noise_snr_db / 10))
    peak = float(np.max(np.abs(audio))) or 1.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
    reference = merge_adjacent(reference)
    return Conversation(uri or f"sim{seed:03d}", audio.astype(np.float32), reference, chosen)


def _tile(noise: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    reps = int(np.ceil(length / len(noise))) + 1
    tiled = np.tile(noise, reps)
    start = int(rng.integers(0, len(noise)))
    return tiled[start : start + length]


def load_sources(paths: list[Path]) -> dict[str, np.ndarray]:
    return {speaker_of(p): load_audio(p) for p in paths}


def build_dev_conversations(
    librispeech_dir: Path, count: int = 12, seed: int = 1000, config: SimulationConfig = SimulationConfig()
) -> list[Conversation]:
    """The simulated dev set: `count` conversations of held-out speakers, fixed by `seed`."""
    paths = sorted(Path(librispeech_dir).glob("*.flac"))
    _, held_out = split_speakers(paths)
    sources = load_sources(held_out)
    return [simulate_conversation(sources, seed + i, config, uri=f"sim{i:02d}") for i in range(count)]
