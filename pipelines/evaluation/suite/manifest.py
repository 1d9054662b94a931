"""What the dev suite holds: one spec per recording, stratified, built without any audio.

Strata (every simulated recording has one of each of the first two, and any of the flags):
- speakers: 1, 2, 3, 4, 5-6, 7-8;
- channel: clean, noise (0-20 dB SNR, shared noise files), far-field (shared and synthetic RIRs),
  telephone (300-3400 Hz, 8 kHz, G.711 mu-law), imbalance (+-10 dB between talkers), meeting
  (meeting-like overlap: long and frequent overlaps, backchannels, a little room);
- flags: dominant (one speaker >= 60 % of the speech), short-turns (turns and backchannels < 1 s).
The grid is speakers x channel x `per_cell`; within a cell the recordings alternate plain,
dominant, short-turns. Durations are log-uniform from a floor that grows with the speaker count
up to 2 min, and `long_recordings` of them, spread over the grid, last 5-10 min.
Every number a recording needs (duration, SNR, noise file, room) is drawn here from the seed, so
the manifest alone says what each recording is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

SPEAKER_STRATA: tuple[tuple[str, int, int], ...] = (
    ("1", 1, 1),
    ("2", 2, 2),
    ("3", 3, 3),
    ("4", 4, 4),
    ("5-6", 5, 6),
    ("7-8", 7, 8),
)
CHANNELS = ("clean", "noise", "far-field", "telephone", "imbalance", "meeting")
FLAGS = ("dominant", "short-turns")
# Shortest recording per speaker count: seven people need more than 15 s to all be heard.
MIN_SECONDS = {1: 15.0, 2: 15.0, 3: 20.0, 4: 30.0, 5: 45.0, 6: 45.0, 7: 60.0, 8: 60.0}


@dataclass(frozen=True)
class SuiteConfig:
    name: str = "dev"
    seed: int = 22
    per_cell: int = 3
    speaker_strata: tuple[tuple[str, int, int], ...] = SPEAKER_STRATA
    channels: tuple[str, ...] = CHANNELS
    max_seconds: float = 120.0
    long_recordings: int = 5
    long_seconds: tuple[float, float] = (300.0, 600.0)
    snr_db: tuple[float, float] = (0.0, 20.0)
    imbalance_db: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RecordingSpec:
    uri: str
    seed: int
    num_speakers: int
    speaker_stratum: str
    channel: str
    duration_seconds: float
    flags: tuple[str, ...] = ()
    # channel settings drawn for this recording (snr_db, noise, rooms, rt60, ...)
    channel_params: dict[str, Any] = field(default_factory=dict)

    @property
    def tags(self) -> tuple[str, ...]:
        return (f"speakers:{self.speaker_stratum}", f"channel:{self.channel}", *(f"flag:{f}" for f in self.flags))

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), tags=list(self.tags))


def _channel_params(channel: str, rng: np.random.Generator, config: SuiteConfig, k: int) -> dict[str, Any]:
    """The channel's numbers for one recording. Noise files and measured RIRs are chosen by index
    into the sorted lists `render` loads, so the manifest needs no file system."""
    lo, hi = config.snr_db
    if channel == "noise":
        return {"snr_db": round(float(rng.uniform(lo, hi)), 2), "noise_index": int(rng.integers(1 << 16))}
    if channel == "far-field":
        # one room per talker (each sits elsewhere): measured where the draw says so, else synthetic
        rooms: list[dict[str, float]] = []
        for _ in range(k):
            if rng.random() < 0.4:
                rooms.append({"measured_index": int(rng.integers(1 << 16))})
            else:
                rooms.append(
                    {"rt60": round(float(rng.uniform(0.3, 0.9)), 3), "drr_db": round(float(rng.uniform(-6.0, 3.0)), 2)}
                )
        return {
            "rooms": rooms,
            "snr_db": round(float(rng.uniform(15.0, 25.0)), 2),
            "noise_index": int(rng.integers(1 << 16)),
        }
    if channel == "telephone":
        return {"snr_db": round(float(rng.uniform(20.0, 30.0)), 2), "noise_index": int(rng.integers(1 << 16))}
    if channel == "imbalance":
        return {"spread_db": config.imbalance_db}
    if channel == "meeting":
        return {
            "rt60": round(float(rng.uniform(0.2, 0.5)), 3),
            "drr_db": round(float(rng.uniform(3.0, 9.0)), 2),
            "snr_db": round(float(rng.uniform(20.0, 30.0)), 2),
            "noise_index": int(rng.integers(1 << 16)),
        }
    return {}


def build_manifest(config: SuiteConfig = SuiteConfig()) -> list[RecordingSpec]:
    rng = np.random.default_rng(config.seed)
    specs: list[RecordingSpec] = []
    for stratum, lo_k, hi_k in config.speaker_strata:
        for channel in config.channels:
            for r in range(config.per_cell):
                k = int(rng.integers(lo_k, hi_k + 1))
                flags: tuple[str, ...] = ()
                if k > 1 and r % 3 == 1:
                    flags = ("dominant",)
                elif k > 1 and r % 3 == 2:
                    flags = ("short-turns",)
                floor = min(MIN_SECONDS.get(k, 60.0), config.max_seconds)
                seconds = float(np.exp(rng.uniform(np.log(floor), np.log(config.max_seconds))))
                specs.append(
                    RecordingSpec(
                        uri=f"{config.name}-{len(specs):03d}",
                        seed=int(rng.integers(1 << 31)),
                        num_speakers=k,
                        speaker_stratum=stratum,
                        channel=channel,
                        duration_seconds=round(seconds, 2),
                        flags=flags,
                        channel_params=_channel_params(channel, rng, config, k),
                    )
                )
    # The long ones: evenly spread over the grid so they do not all share a stratum.
    if config.long_recordings and specs:
        stride = max(1, len(specs) // config.long_recordings)
        for i in range(stride // 2, len(specs), stride)[: config.long_recordings]:
            specs[i] = replace(specs[i], duration_seconds=round(float(rng.uniform(*config.long_seconds)), 2))
    return specs


def manifest_digest(config: SuiteConfig, version: str, sources: list[str]) -> str:
    """The suite's cache key: its parameters, the generator's version and the source files' names."""
    payload = json.dumps({"config": config.to_dict(), "version": version, "sources": sources}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def strata_counts(specs: list[RecordingSpec]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for spec in specs:
        for tag in spec.tags:
            counts[tag] = counts.get(tag, 0) + 1
    return dict(sorted(counts.items()))


def total_seconds(specs: list[RecordingSpec]) -> float:
    return float(sum(s.duration_seconds for s in specs))
