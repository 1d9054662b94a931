"""Build `X.plda.npz` for embedding model `X.onnx` from the LibriSpeech TRAINING speakers only.

    python -m pipelines.clustering.build_plda --model voiceflow/models/student.onnx [--seed 0]
    python -m pipelines.clustering.build_plda --model voiceflow/models/ge2e.onnx

Speakers: `pipelines.simulation.split_speakers(...)[0]` (never the held-out evaluation voices, never
AMI). Each utterance, also played 0.9x and 1.1x as two more pseudo-speakers (speed changes pitch
and formants, so the between-speaker covariance sees three times as many voices), is heard through
several channels — clean, telephone band (300-3400 Hz, 8 kHz, G.711 mu-law), noise at 0-20 dB SNR,
a recorded or synthetic room, room plus noise, telephone plus noise — so channel lands in the
PLDA's within-speaker covariance, where it belongs. Windows are the pipeline's own (1.6 s, read the
way the engine reads the model, staggered models included), every `--hop` seconds, kept when the
clean source is voiced for at least half the window. Everything follows from `--seed`.
When the model is a sealed bundle (X.bundle.json), the index is rewritten to list the new part.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

from pipelines.clustering.plda_train import train_plda
from pipelines.paths import shared_data_dir
from pipelines.simulation import ENERGY_FRAME, split_speakers, voiced_mask
from pipelines.training.augment import AugmentAssets, add_noise, change_speed, load_assets, reverberate, synthetic_rir
from pipelines.training.data import read_audio
from voiceflow import SAMPLE_RATE
from voiceflow.bundle import index_path, write_index
from voiceflow.clustering.plda import PLDA, plda_path, save_plda
from voiceflow.embedding import EmbeddingModel
from voiceflow.pipeline import WindowPlan, embed_plan
from voiceflow.vad import FRAME_SECONDS

CHANNELS = ("clean", "telephone", "noise", "room", "room+noise", "telephone+noise")
SPEEDS = (1.0, 0.9, 1.1)
WINDOW_SECONDS = 1.6


def telephone(x: np.ndarray) -> np.ndarray:
    """Narrowband call: 300-3400 Hz band-pass, 8 kHz, G.711 mu-law round trip, back to 16 kHz."""
    band = sosfiltfilt(butter(6, (300.0, 3400.0), btype="bandpass", fs=SAMPLE_RATE, output="sos"), x)
    narrow = resample_poly(band, 8000, SAMPLE_RATE)
    peak = float(np.max(np.abs(narrow))) or 1.0
    y = np.clip(narrow * (0.7 / peak), -1.0, 1.0)
    codes = np.round((np.sign(y) * np.log1p(255.0 * np.abs(y)) / np.log1p(255.0) + 1.0) * 127.5)
    z = codes / 127.5 - 1.0
    coded = np.sign(z) * np.expm1(np.abs(z) * np.log1p(255.0)) / 255.0 * (peak / 0.7)
    wide = resample_poly(coded, SAMPLE_RATE, 8000)[: len(x)]
    return np.pad(wide, (0, len(x) - len(wide))).astype(np.float32)


def through_channel(x: np.ndarray, channel: str, rng: np.random.Generator, assets: AugmentAssets) -> np.ndarray:
    y = x.astype(np.float32)
    if channel.startswith("room"):
        use_recorded = assets.rirs and rng.random() < 0.5
        rir = (
            assets.rirs[int(rng.integers(len(assets.rirs)))]
            if use_recorded
            else synthetic_rir(rng, (0.2, 0.9), (-3.0, 12.0))
        )
        y = reverberate(y, rir)
    if channel.startswith("telephone"):
        y = telephone(y)
    if channel.endswith("noise") and assets.noises:
        y = add_noise(y, assets.noises[int(rng.integers(len(assets.noises)))], float(rng.uniform(0.0, 20.0)), rng)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def voiced_windows(clean: np.ndarray, hop_seconds: float) -> WindowPlan:
    """Windows every `hop_seconds` whose clean source is voiced for at least half their length."""
    frame = round(FRAME_SECONDS * SAMPLE_RATE)
    width = round(WINDOW_SECONDS / FRAME_SECONDS)
    frames = max(len(clean) // frame, width)
    voiced = np.repeat(voiced_mask(clean), ENERGY_FRAME)[: frames * frame]
    voiced = np.pad(voiced, (0, frames * frame - len(voiced)))
    per_frame = voiced.reshape(frames, frame).mean(axis=1)
    starts = np.arange(0, frames - width + 1, max(1, round(hop_seconds / FRAME_SECONDS)))
    keep = [s for s in starts if per_frame[s : s + width].mean() >= 0.5]
    return WindowPlan(np.array(keep, dtype=int), width)


def collect(
    model: EmbeddingModel, paths: list[Path], assets: AugmentAssets, seed: int, hop: float
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every (speaker, speed) pseudo-speaker through every channel, and their labels."""
    embeddings, labels = [], []
    for index, path in enumerate(paths):
        source = read_audio(path)
        for speed_index, speed in enumerate(SPEEDS):
            clean = source if speed == 1.0 else change_speed(source, speed)
            plan = voiced_windows(clean, hop)
            if len(plan.starts) < 2:
                continue
            for channel_index, channel in enumerate(CHANNELS):
                rng = np.random.default_rng([seed, index, speed_index, channel_index])
                audio = through_channel(clean, channel, rng, assets)
                embeddings.append(embed_plan(model, audio, plan))
                labels += [index * len(SPEEDS) + speed_index] * len(plan.starts)
        if (index + 1) % 20 == 0:
            print(f"  {index + 1}/{len(paths)} speakers", flush=True)
    return np.concatenate(embeddings), np.array(labels)


class PLDADataError(ValueError):
    """The training audio a PLDA is built from (LibriSpeech training speakers, noise, rooms) is missing."""


def missing_training_data(data: Path) -> str | None:
    """Why a PLDA cannot be built from `data`, or None when the audio it needs is there."""
    speakers = data / "librispeech-train-clean-100"
    train, _ = split_speakers(sorted(speakers.glob("*.flac"))) if speakers.is_dir() else ([], [])
    if len(train) < 2:
        return f"no LibriSpeech training speakers under {speakers}"
    if not (data / "augmentation").is_dir():
        return f"no noise and room files under {data / 'augmentation'}"
    return None


def build_model_plda(
    model: EmbeddingModel, data: Path, seed: int = 0, lda_dim: int = 128, hop: float = 0.8, cache: Path | None = None
) -> tuple[PLDA, dict[str, object]]:
    """`model`'s PLDA from the training speakers under `data`, and a summary of what it saw.
    `cache` (.npz) keeps or reuses the training embeddings."""
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            embeddings, labels = stored["embeddings"], stored["labels"]
    else:
        reason = missing_training_data(data)
        if reason is not None:
            raise PLDADataError(reason)
        train, _ = split_speakers(sorted((data / "librispeech-train-clean-100").glob("*.flac")))
        assets = load_assets(data / "augmentation")
        print(f"{model.path.name}: {len(train)} training speakers x {len(SPEEDS)} speeds x {len(CHANNELS)} channels")
        embeddings, labels = collect(model, train, assets, seed, hop)
        if cache is not None:
            np.savez(cache, embeddings=embeddings, labels=labels)
    plda = train_plda(embeddings, labels, lda_dim)
    summary: dict[str, object] = {
        "model": model.path.name,
        "windows": len(labels),
        "pseudo_speakers": len(np.unique(labels)),
        "lda_dim": plda.dim,
        "seed": seed,
        "hop": hop,
        "psi_top": [round(float(v), 2) for v in plda.psi[:5]],
    }
    return plda, summary


def write_model_plda(model_path: Path, plda: PLDA, out: Path | None = None) -> Path:
    """Save `plda` as the model's X.plda.npz (or `out`), atomically; a sealed bundle is resealed."""
    out = out or plda_path(model_path)
    staging = out.with_name(f".{out.name}.tmp.npz")
    save_plda(staging, plda)
    os.replace(staging, out)
    if out == plda_path(model_path) and index_path(model_path).is_file():
        # The model is a sealed bundle: an unlisted PLDA beside it would make it refuse to load.
        print(f"resealed {index_path(model_path).name}: digest {write_index(model_path).digest[:12]}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="voiceflow/models/student.onnx")
    parser.add_argument("--data", default=str(shared_data_dir()))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lda-dim", type=int, default=128)
    parser.add_argument("--hop", type=float, default=0.8, help="seconds between training windows")
    parser.add_argument("--out", default=None, help="default: X.plda.npz beside the model")
    parser.add_argument("--cache", default=None, help="optional .npz to keep/reuse the training embeddings")
    args = parser.parse_args(argv)
    model = EmbeddingModel.load(args.model)
    cache = Path(args.cache) if args.cache else None
    plda, summary = build_model_plda(model, Path(args.data), args.seed, args.lda_dim, args.hop, cache)
    out = write_model_plda(model.path, plda, Path(args.out) if args.out else None)
    print(f"wrote {out}: {json.dumps(summary)}")


if __name__ == "__main__":
    main()
