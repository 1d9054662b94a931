"""Speaker-verification EER of window embeddings, cosine vs the model's PLDA, per channel.

    .venv/bin/python research/plda_eer.py [--model voiceflow/models/student.onnx]

Held-out (evaluation) LibriSpeech speakers only, never the PLDA's training voices; 1.6 s windows
every 0.8 s read as the engine reads them; trials: every pair of windows within one channel
(same-speaker pairs come from one ~12 s utterance, so the EERs are optimistic; they compare the
two scorings, they do not measure verification).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipelines.clustering.build_plda import through_channel, voiced_windows
from pipelines.paths import shared_data_dir
from pipelines.simulation import split_speakers
from pipelines.training.augment import load_assets
from pipelines.training.data import read_audio
from voiceflow.clustering.plda import model_plda, plda_scores
from voiceflow.embedding import EmbeddingModel, l2_normalize
from voiceflow.pipeline import embed_plan


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    order = np.argsort(-scores)
    hits = np.cumsum(same[order]) / same.sum()
    false = np.cumsum(~same[order]) / (~same).sum()
    i = int(np.argmin(np.abs((1 - hits) - false)))
    return float(((1 - hits[i]) + false[i]) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="voiceflow/models/student.onnx")
    args = parser.parse_args()
    data = shared_data_dir()
    model = EmbeddingModel.load(args.model)
    plda = model_plda(model)
    assets = load_assets(Path(data) / "augmentation")
    _, held_out = split_speakers(sorted((Path(data) / "librispeech-train-clean-100").glob("*.flac")))
    for channel in ("clean", "telephone", "noise", "room"):
        emb, spk = [], []
        for i, path in enumerate(held_out):
            clean = read_audio(path)
            plan = voiced_windows(clean, 0.8)
            audio = through_channel(clean, channel, np.random.default_rng([7, i]), assets)
            emb.append(embed_plan(model, audio, plan))
            spk += [i] * len(plan.starts)
        x, s = np.concatenate(emb), np.array(spk)
        same = s[:, None] == s[None, :]
        upper = np.triu_indices(len(s), k=1)
        unit = l2_normalize(x - (model.background_mean if model.background_mean is not None else 0))
        cos = (unit @ unit.T)[upper]
        f = plda.features(x)
        llr = plda_scores(f, f, plda.phi())[upper]
        print(
            f"{channel:10s} windows {len(s):5d}  EER cosine {100 * eer(cos, same[upper]):5.1f} %  "
            f"PLDA {100 * eer(llr, same[upper]):5.1f} %",
            flush=True,
        )


if __name__ == "__main__":
    main()
