"""Training chunks for the segmentation model: voices + `pipelines.simulation` chunk targets.

Two voice sources for simulated chunks:
- "librispeech": the *training* side of the engine's fixed speaker split
  (`pipelines.simulation.split_speakers`), validation from the held-out side, so validation
  speakers are never trained on.
- "synthetic": deterministic buzz-through-formant voices (a pitch, two formants and a syllable
  rate per voice), for tests and smoke runs that must not need ../shared/data. They are easy to
  tell apart by pitch, which is exactly what a smoke test needs: a learnable task.

Real meetings: random crops of the AMI training excerpts (`AmiCorpus`), labels from their RTTM.
Augmentation (reverberation, real noise, gain): `augment.py`. Batches in worker processes:
`loader.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from pipelines.segmentation.augment import AugmentAssets, SegAugmentConfig, augment_chunk, no_assets, speaker_rooms
from pipelines.segmentation.powerset import MAX_SIMULTANEOUS
from pipelines.simulation import (
    ChunkConfig,
    Interval,
    frame_labels,
    load_sources,
    render_chunk,
    sample_chunk_turns,
    split_speakers,
)
from voiceflow import SAMPLE_RATE
from voiceflow.audio import load_audio
from voiceflow.rttm import read_rttm
from voiceflow.segments import Segment


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
    pool: list[np.ndarray],
    rng: np.random.Generator,
    config: ChunkConfig,
    snr_db: tuple[float, float],
    augment: SegAugmentConfig | None = None,
    assets: AugmentAssets | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(waveform [samples] float32, labels [frames, max_speakers] uint8) of one random chunk.

    Without `augment` the chunk is the clean mix plus the white noise floor (the validation
    chunks); with it, reverberation, real noise and gain follow (`augment.augment_chunk`).
    """
    turns = sample_chunk_turns(rng, config)
    used = max((t.speaker for t in turns), default=-1) + 1
    voices = [pool[int(i)] for i in rng.choice(len(pool), size=used, replace=False)] if used else []
    spread = augment.level_spread_db if augment is not None else 6.0
    roomed = False
    if augment is not None and augment.p_speaker_rooms > 0:
        # Each speaker on its own track, through its own room when the draw says so, then mixed.
        tracks, voiced = render_chunk(turns, voices, rng, config, level_spread_db=spread, per_speaker=True)
        roomed = rng.random() < augment.p_speaker_rooms
        if roomed:
            tracks = speaker_rooms(tracks, rng, augment, assets or no_assets())
        audio = tracks.sum(axis=0)
    else:
        audio, voiced = render_chunk(turns, voices, rng, config, level_spread_db=spread)
    labels = frame_labels(voiced, config.num_frames, config.max_speakers, config.frame_samples)
    audio = add_noise_floor(audio, bool(labels.any()), rng, snr_db)
    if augment is not None:
        audio = augment_chunk(audio, rng, augment, assets or no_assets(), reverberated=roomed)
    return audio.astype(np.float32), labels


def add_noise_floor(
    audio: np.ndarray, has_speech: bool, rng: np.random.Generator, snr_db: tuple[float, float]
) -> np.ndarray:
    """White noise at a random SNR relative to the chunk's speech (fixed level for silent chunks),
    so silence is never digital zero — it never is at inference."""
    power = float(np.mean(audio**2)) if has_speech else 1e-3
    noise_db = rng.uniform(*snr_db)
    return audio + rng.standard_normal(len(audio)).astype(np.float32) * np.sqrt(power / 10 ** (noise_db / 10))


def make_batch(
    pool: list[np.ndarray],
    rng: np.random.Generator,
    size: int,
    config: ChunkConfig,
    snr_db: tuple[float, float],
    augment: SegAugmentConfig | None = None,
    assets: AugmentAssets | None = None,
    ami: AmiCorpus | None = None,
    p_ami: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """`size` chunks: each an AMI crop with probability `p_ami` (when `ami` is given), else simulated."""
    chunks = []
    for _ in range(size):
        if ami is not None and p_ami > 0 and rng.random() < p_ami:
            wave, labels = ami.crop(rng, config)
            wave = add_noise_floor(wave, bool(labels.any()), rng, snr_db)
            if augment is not None:
                wave = augment_chunk(wave, rng, augment, assets or no_assets())
            chunks.append((wave.astype(np.float32), labels))
        else:
            chunks.append(make_chunk(pool, rng, config, snr_db, augment, assets))
    return np.stack([c[0] for c in chunks]), np.stack([c[1] for c in chunks])


# --- real meetings: AMI training excerpts ----------------------------------------------------


@dataclass(frozen=True)
class AmiCorpus:
    """AMI training excerpts with their RTTM turns (never the dev files: those score the engine)."""

    audio: dict[str, np.ndarray]
    turns: dict[str, list[Segment]]

    def crop(
        self, rng: np.random.Generator, config: ChunkConfig, max_tries: int = 200
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random chunk-long crop and its frame labels; crops the powerset cannot hold
        (more than `max_speakers` speakers, or a frame with more than 2 at once) are redrawn."""
        names = sorted(self.audio)
        for _ in range(max_tries):
            name = names[int(rng.integers(len(names)))]
            audio = self.audio[name]
            if len(audio) < config.num_samples:
                continue
            start = int(rng.integers(0, len(audio) - config.num_samples + 1))
            labels = crop_labels(self.turns.get(name, []), start, config)
            if labels is not None:
                return audio[start : start + config.num_samples].copy(), labels
        raise ValueError(f"no AMI crop with <= {config.max_speakers} speakers in {max_tries} tries")


def crop_labels(
    turns: list[Segment], start: int, config: ChunkConfig, max_simultaneous: int = MAX_SIMULTANEOUS
) -> np.ndarray | None:
    """[frames, max_speakers] labels of the crop starting at sample `start`, or None when it does
    not fit the powerset. Frame-centre rule as `pipelines.simulation.frame_labels`; local speakers
    are numbered by their first active frame (ties: by RTTM label), as a model cannot know more."""
    end = start + config.num_samples
    speakers = sorted({t.speaker for t in turns})
    intervals = []
    for turn in turns:
        a, b = round(turn.start * SAMPLE_RATE) - start, round(turn.end * SAMPLE_RATE) - start
        if b > 0 and a < end - start:
            intervals.append(Interval(speakers.index(turn.speaker), max(a, 0), min(b, end - start)))
    full = frame_labels(intervals, config.num_frames, len(speakers), config.frame_samples)
    active = [s for s in range(len(speakers)) if full[:, s].any()]
    if len(active) > config.max_speakers or (full.sum(axis=1) > max_simultaneous).any():
        return None
    active.sort(key=lambda s: (int(np.argmax(full[:, s])), s))
    labels = np.zeros((config.num_frames, config.max_speakers), dtype=np.uint8)
    for local, s in enumerate(active):
        labels[:, local] = full[:, s]
    return labels


def load_ami(folder: Path, names: list[str]) -> AmiCorpus:
    """`<folder>/<name>.wav` or `.flac` for each name, turns from `<folder>/train.rttm`."""
    dev = [n for n in names if n.startswith("dev")]
    if dev:
        raise ValueError(f"AMI dev files {dev} are the engine's dev set: never train on them")
    turns = read_rttm(folder / "train.rttm")
    audio = {}
    for name in names:
        path = next((folder / f"{name}{ext}" for ext in (".wav", ".flac") if (folder / f"{name}{ext}").exists()), None)
        if path is None:
            raise FileNotFoundError(f"{folder}/{name}.wav (or .flac) is missing")
        audio[name] = load_audio(path)
    return AmiCorpus(audio, {n: turns.get(n, []) for n in names})
