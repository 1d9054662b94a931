"""Speaker-verification EER of window embeddings per model and channel, cosine vs the model's PLDA.

    .venv/bin/python research/plda_eer.py [--models voiceflow/models/ge2e.onnx voiceflow/models/student.onnx]
        [--channels clean telephone noise room] [--min-gap 2.0] [--markdown-out F]

Voices: the held-out (evaluation) LibriSpeech speakers of `pipelines.simulation.split_speakers`,
never the PLDA's (or any model's) training voices. Windows: 1.6 s every 0.8 s where the clean
source is voiced, read as the engine reads the model (staggered models included). Each channel
is the one the PLDA is trained with (`pipelines.clustering.build_plda.through_channel`: telephone
300-3400 Hz / 8 kHz / G.711 mu-law, noise at 0-20 dB from the shared noise files, a measured or
synthetic room), drawn per speaker with a fixed seed, so every model hears the same audio.

Trials, within one channel: different-speaker pairs are every pair of windows of two voices;
same-speaker pairs only windows that do not overlap and lie at least `--min-gap` seconds apart
(end of one to start of the other). Scoring: cosine after removing the model's background mean
(what the engine clusters with), and the PLDA log-likelihood ratio (what VBx uses).

Limitation, stated wherever the figures are quoted: the shared LibriSpeech holds one ~12 s
utterance per speaker, so both sides of a same-speaker trial come from one recording session,
one reading and one channel draw. Separating the windows removes the shared audio and the
moment-to-moment similarity, not the session: these EERs are still lower than verification
across sessions would give. They rank models, channels and scorings; they are not a
verification benchmark.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.clustering.build_plda import WINDOW_SECONDS, through_channel, voiced_windows
from pipelines.paths import shared_data_dir
from pipelines.simulation import split_speakers
from pipelines.training.augment import AugmentAssets, load_assets
from pipelines.training.data import read_audio
from voiceflow.clustering.plda import optional_model_plda, plda_scores
from voiceflow.embedding import EmbeddingModel, l2_normalize
from voiceflow.pipeline import embed_plan
from voiceflow.vad import FRAME_SECONDS

CHANNELS = ("clean", "telephone", "noise", "room")
MODELS = ("voiceflow/models/ge2e.onnx", "voiceflow/models/student.onnx")
HOP_SECONDS = 0.8


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Equal error rate of `scores` (higher = same) for trials labelled `same`."""
    order = np.argsort(-scores)
    hits = np.cumsum(same[order]) / same.sum()
    false = np.cumsum(~same[order]) / (~same).sum()
    i = int(np.argmin(np.abs((1 - hits) - false)))
    return float(((1 - hits[i]) + false[i]) / 2)


def trial_pairs(
    speakers: np.ndarray, starts_s: np.ndarray, window_s: float, min_gap_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trials among windows (i < j): (i, j, same speaker?). Same-speaker pairs only when the
    windows are `min_gap_s` or more apart (end to start), so no trial compares a window with
    audio it shares or abuts; every different-speaker pair is kept."""
    i, j = np.triu_indices(len(speakers), k=1)
    same = speakers[i] == speakers[j]
    gap = np.abs(starts_s[i] - starts_s[j]) - window_s
    keep = ~same | (gap >= min_gap_s)
    return i[keep], j[keep], same[keep]


@dataclass(frozen=True)
class ChannelResult:
    model: str
    channel: str
    windows: int
    same_trials: int
    different_trials: int
    eer_cosine: float
    eer_plda: float | None  # None: the model's bundle has no PLDA


def channel_eer(
    model: EmbeddingModel, name: str, paths: list[Path], channel: str, assets: AugmentAssets, min_gap_s: float
) -> ChannelResult:
    embeddings, speakers, starts = [], [], []
    for index, path in enumerate(paths):
        clean = read_audio(path)
        plan = voiced_windows(clean, HOP_SECONDS)
        audio = through_channel(clean, channel, np.random.default_rng([7, index]), assets)
        embeddings.append(embed_plan(model, audio, plan))
        speakers += [index] * len(plan.starts)
        starts.append(plan.starts * FRAME_SECONDS)
    x, spk, start_s = np.concatenate(embeddings), np.array(speakers), np.concatenate(starts)
    i, j, same = trial_pairs(spk, start_s, WINDOW_SECONDS, min_gap_s)
    mean = model.background_mean if model.background_mean is not None else 0.0
    unit = l2_normalize(x - mean)
    cosine = np.einsum("nd,nd->n", unit[i], unit[j])
    plda = optional_model_plda(model)
    eer_plda = None
    if plda is not None:
        features = plda.features(x)
        eer_plda = eer(plda_scores(features, features, plda.phi())[i, j], same)
    return ChannelResult(
        name,
        channel,
        len(spk),
        int(same.sum()),
        int((~same).sum()),
        eer(cosine, same),
        eer_plda,
    )


def markdown_table(results: list[ChannelResult], min_gap_s: float) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}"

    lines = [
        f"| model | channel | windows | same / different trials (gap >= {min_gap_s:g} s) | EER cosine % | EER PLDA % |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.channel} | {r.windows} | {r.same_trials} / {r.different_trials} | "
            f"{pct(r.eer_cosine)} | {pct(r.eer_plda)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="embedding models (ONNX, bundle beside it)")
    parser.add_argument("--channels", nargs="+", default=list(CHANNELS), choices=CHANNELS)
    parser.add_argument("--min-gap", type=float, default=2.0, help="seconds between same-speaker windows")
    parser.add_argument("--markdown-out", type=Path, help="also write the table here")
    args = parser.parse_args()
    data = Path(shared_data_dir())
    _, held_out = split_speakers(sorted((data / "librispeech-train-clean-100").glob("*.flac")))
    assets = load_assets(data / "augmentation")
    results = []
    for model_path in args.models:
        model = EmbeddingModel.load(model_path)
        if optional_model_plda(model) is None:
            print(f"{model_path}: no PLDA (python -m pipelines.clustering.build_plda --model {model_path})")
        for channel in args.channels:
            result = channel_eer(model, Path(model_path).name, held_out, channel, assets, args.min_gap)
            results.append(result)
            print(
                f"{result.model:16s} {channel:10s} windows {result.windows:5d}  "
                f"EER cosine {100 * result.eer_cosine:5.1f} %  PLDA "
                + ("   -" if result.eer_plda is None else f"{100 * result.eer_plda:5.1f} %"),
                flush=True,
            )
    table = markdown_table(results, args.min_gap)
    print(f"\n{len(held_out)} held-out speakers\n\n{table}")
    if args.markdown_out:
        args.markdown_out.write_text(table + "\n")


if __name__ == "__main__":
    main()
