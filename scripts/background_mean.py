"""Compute a model's background (mean) embedding from TRAINING audio only; written beside the model.

    python scripts/background_mean.py [--model voiceflow/models/ge2e.onnx] [--data ../shared/data]

Sources: AMI `trn*` excerpts and the LibriSpeech training-split speakers (`split_speakers`'s first
list; the held-out speakers of the simulated dev set are never used), 1.6 s windows every 1 s with
some energy, averaged per source set, then the two set means averaged. The streaming session
subtracts it before online clustering: it removes the direction every GE2E embedding shares, which
is what makes raw cosine similarities of different speakers so high.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from voiceflow.audio import load_audio
from voiceflow.embedding import DEFAULT_MODEL, EmbeddingModel, background_path
from voiceflow.evaluation import shared_data_dir
from voiceflow.simulate import split_speakers


def set_mean(model: EmbeddingModel, files: list[Path]) -> np.ndarray:
    means = []
    for path in files:
        audio = load_audio(path)
        starts = range(0, max(1, len(audio) - 25600), 16000)
        windows = np.stack([np.pad(audio[s : s + 25600], (0, max(0, s + 25600 - len(audio)))) for s in starts])
        voiced = windows[np.sqrt((windows**2).mean(axis=1)) > 0.005]
        if len(voiced):
            means.append(model.embed_batched(voiced).mean(axis=0))
    return np.mean(means, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--data", default=str(shared_data_dir()))
    args = parser.parse_args()
    data = Path(args.data)
    model = EmbeddingModel.load(args.model)
    ami = sorted((data / "ami-excerpts").glob("trn*.wav"))
    train_speakers, _ = split_speakers(sorted((data / "librispeech-train-clean-100").glob("*.flac")))
    mean = 0.5 * (set_mean(model, ami) + set_mean(model, train_speakers[::4]))
    out = background_path(Path(args.model))
    np.save(out, mean.astype(np.float32))
    print(f"wrote {out} (norm {np.linalg.norm(mean):.3f})")


if __name__ == "__main__":
    main()
