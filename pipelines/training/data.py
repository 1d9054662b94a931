"""Training data: utterances from ../shared/data cut into fixed crops with optional speaker labels.

Crops sit on a fixed grid so the teacher's embedding of each crop can be computed once and
cached; the student sees the same crop (augmented) and is pulled towards that embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from pipelines.training.config import DataConfig

SAMPLE_RATE = 16000
# An AMI crop gets a speaker label only when one speaker clearly dominates it; others are used
# for distillation alone (the teacher needs no labels).
AMI_LABEL_MIN_COVERAGE = 0.7
AMI_LABEL_MAX_OTHER = 0.1
AMI_MIN_SPEECH = 0.5


@dataclass(frozen=True)
class Utterance:
    key: str
    audio: np.ndarray  # float32 mono 16 kHz
    speaker: str | None  # None: several speakers (AMI excerpt); labels come per crop
    turns: tuple[tuple[float, float, str], ...] = ()  # (start, end, speaker) for AMI


@dataclass(frozen=True)
class Crop:
    utterance: int  # index into the utterance list
    start: int  # sample offset
    label: int  # speaker class, -1 = unlabelled (distillation only)


@dataclass(frozen=True)
class Dataset:
    utterances: list[Utterance]
    train: list[Crop]
    val: list[Crop]
    speakers: list[str]  # class index -> speaker id
    crop_samples: int
    # Utterances training crops may come from (LibriSpeech training speakers and AMI meetings,
    # never the held-out validation speakers): what data.sampling "file" draws from.
    train_utterances: tuple[int, ...] = ()


def read_audio(path: Path) -> np.ndarray:
    """Any soundfile format -> float32 mono 16 kHz (noise/RIR files come at 44.1/48 kHz, some stereo)."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.ascontiguousarray(mono, dtype=np.float32)


def read_rttm_turns(path: Path) -> dict[str, list[tuple[float, float, str]]]:
    turns: dict[str, list[tuple[float, float, str]]] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, dur = float(parts[3]), float(parts[4])
            turns.setdefault(parts[1], []).append((start, start + dur, parts[7]))
    return turns


def librispeech_split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(training files, held-out files): the engine's fixed speaker split, so the simulated dev
    conversations (`pipelines.evaluation.devsets`) are always of voices the student never trained on."""
    from pipelines.simulation import split_speakers

    return split_speakers(sorted(folder.glob("*.flac")))


def load_librispeech(paths: list[Path]) -> list[Utterance]:
    return [Utterance(f"libri/{p.stem}", read_audio(p), p.name.split("-")[0]) for p in paths]


def load_ami(folder: Path, names: list[str]) -> list[Utterance]:
    if not names:
        return []
    turns = read_rttm_turns(folder / "train.rttm")
    return [Utterance(f"ami/{n}", read_audio(folder / f"{n}.wav"), None, tuple(turns.get(n, []))) for n in names]


def grid_starts(n_samples: int, crop: int, hop: int, limit: int | None) -> list[int]:
    starts = list(range(0, max(n_samples - crop, -1) + 1, hop))
    if limit is not None and len(starts) > limit:
        # spread the kept crops over the whole utterance rather than taking its beginning
        picks = np.linspace(0, len(starts) - 1, limit).round().astype(int)
        starts = [starts[i] for i in picks]
    return starts


def speaker_coverage(turns: tuple[tuple[float, float, str], ...], start: float, end: float) -> dict[str, float]:
    """Fraction of [start, end) each speaker talks in (overlap counts for both)."""
    cover: dict[str, float] = {}
    for t0, t1, spk in turns:
        inter = min(end, t1) - max(start, t0)
        if inter > 0:
            cover[spk] = cover.get(spk, 0.0) + inter / (end - start)
    return cover


def crop_coverage(utt: Utterance, start: int, crop_samples: int) -> dict[str, float]:
    """speaker_coverage of the crop of `crop_samples` at sample `start` of a meeting."""
    t0 = start / SAMPLE_RATE
    return speaker_coverage(utt.turns, t0, t0 + crop_samples / SAMPLE_RATE)


def ami_crop_label(cover: dict[str, float]) -> str | None:
    if not cover:
        return None
    ranked = sorted(cover.items(), key=lambda kv: -kv[1])
    top, share = ranked[0]
    other = sum(v for _, v in ranked[1:])
    return top if share >= AMI_LABEL_MIN_COVERAGE and other <= AMI_LABEL_MAX_OTHER else None


def build_dataset(config: DataConfig, seed: int) -> Dataset:
    """Training crops from the training speakers (+ AMI trn); validation crops from held-out speakers.

    `seed` is unused today (the split is fixed by the engine) but kept in the signature so a
    future random subset stays a pure function of the config.
    """
    del seed
    root = config.root()
    train_files, held_out = librispeech_split(root / config.librispeech)
    train_files = train_files[: config.max_speakers] if config.max_speakers is not None else train_files
    libri = load_librispeech(train_files)
    val_utts = load_librispeech(held_out[: config.val_speakers])
    ami = load_ami(root / config.ami, list(config.ami_files))
    utterances = libri + ami + val_utts
    crop = round(config.crop_seconds * SAMPLE_RATE)
    hop = round(config.crop_hop_seconds * SAMPLE_RATE)

    raw: list[tuple[int, int, str | None]] = []  # (utterance, start, speaker label or None)
    val: list[Crop] = []
    val_ids = {u.speaker: i for i, u in enumerate(val_utts)}
    ami_hop = round(config.ami_hop_seconds * SAMPLE_RATE) if config.ami_hop_seconds else hop
    for index, utt in enumerate(utterances):
        utt_hop = ami_hop if utt.speaker is None else hop
        for start in grid_starts(len(utt.audio), crop, utt_hop, config.max_crops_per_utterance):
            if utt.speaker in val_ids:
                # validation crops carry a per-speaker id for EER, never a training class
                val.append(Crop(index, start, val_ids[utt.speaker]))
            elif utt.speaker is not None:
                raw.append((index, start, utt.speaker))
            else:
                cover = crop_coverage(utt, start, crop)
                if sum(cover.values()) >= AMI_MIN_SPEECH:  # mostly silence: never embedded by the engine
                    raw.append((index, start, ami_crop_label(cover)))

    speakers = sorted({spk for _, _, spk in raw if spk is not None})
    label_of = {spk: i for i, spk in enumerate(speakers)}
    train = [Crop(u, s, label_of[spk] if spk else -1) for u, s, spk in raw]
    return Dataset(utterances, train, val, speakers, crop, tuple(range(len(libri) + len(ami))))


def crop_label(dataset: Dataset, utterance: int, start: int) -> int:
    """The speaker class of a crop anywhere in a training utterance (-1: unlabelled), by the grid's rules."""
    utt = dataset.utterances[utterance]
    if utt.speaker is not None:
        speaker: str | None = utt.speaker
    else:
        speaker = ami_crop_label(crop_coverage(utt, start, dataset.crop_samples))
    return dataset.speakers.index(speaker) if speaker in dataset.speakers else -1


def draw_file_crops(dataset: Dataset, rng: np.random.Generator, count: int, meeting_group: int = 0) -> list[Crop]:
    """`count` crops drawn as data.sampling "file" does: a training utterance uniformly, then a
    uniform offset in it (an utterance shorter than a crop starts at 0 and is zero-padded). With
    `meeting_group` G the first G crops all come from one meeting, drawn uniformly among them."""
    if not dataset.train_utterances:
        raise ValueError("no training utterances to draw crops from")
    crops = []
    if meeting_group:
        meetings = [u for u in dataset.train_utterances if dataset.utterances[u].speaker is None]
        if not meetings:
            raise ValueError("data.meeting_group needs AMI meetings among the training recordings")
        meeting = meetings[int(rng.integers(len(meetings)))]
        crops = [crop_in(dataset, meeting, rng) for _ in range(min(meeting_group, count))]
    while len(crops) < count:
        crops.append(crop_in(dataset, dataset.train_utterances[int(rng.integers(len(dataset.train_utterances)))], rng))
    return crops


def crop_in(dataset: Dataset, utterance: int, rng: np.random.Generator) -> Crop:
    """A crop at a uniform offset in `utterance`, labelled by the grid's rules."""
    length = len(dataset.utterances[utterance].audio)
    start = int(rng.integers(0, max(1, length - dataset.crop_samples)))
    return Crop(utterance, start, crop_label(dataset, utterance, start))


def crop_audio(dataset: Dataset, crop: Crop) -> np.ndarray:
    audio = dataset.utterances[crop.utterance].audio[crop.start : crop.start + dataset.crop_samples]
    if len(audio) < dataset.crop_samples:  # an utterance shorter than one window: zero-pad
        audio = np.pad(audio, (0, dataset.crop_samples - len(audio)))
    return audio
