"""How the offline clustering's speaker-count decision behaves for several embedding models.

    .venv/bin/python research/scripts/merge_rule_probe.py MODEL.onnx [MODEL.onnx ...] [--phases 5] [--cache DIR]

Embeds the AMI dev and train excerpts and the simulated dev conversations once per model (every
grid phase; cached as .npz under --cache), then scores the whole pipeline under each merge rule in
`rules()` with the embeddings held fixed, so only the clustering's decision changes. Prints DER
(collar 0, pooled over phases) per set and model. A measurement aid for docs/pipelines.md.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

import voiceflow.pipeline as pipeline
from pipelines.evaluation.devsets import DevItem, at_phases, load_ami_split, load_sim_dev, score_items
from voiceflow.clustering.offline import (
    OfflineClusteringConfig,
    centroids_of,
    cluster_embeddings,
    merge_similar_clusters,
    relabel_by_first_appearance,
)
from voiceflow.embedding import EmbeddingModel, l2_normalize
from voiceflow.segments import Segment
from voiceflow.vad import Speech

Merge = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (raw embeddings, labels) -> labels


def relative_merge(ratio: float) -> Merge:
    """Merge the pair of clusters whose raw centroids are closest *relative to their own spread*
    (1 - cos between centroids, over the mean 1 - cos of members to their centroid), while < ratio."""

    def merge(raw: np.ndarray, labels: np.ndarray) -> np.ndarray:
        x = l2_normalize(raw)
        labels = labels.copy()
        while True:
            ids, cents = centroids_of(x, labels)
            if len(ids) < 2:
                return labels
            spread = np.array([np.mean(1 - x[labels == i] @ c) for i, c in zip(ids, cents, strict=True)])
            dist = 1 - cents @ cents.T
            rel = dist / ((spread[:, None] + spread[None, :]) / 2)
            np.fill_diagonal(rel, np.inf)
            a, b = np.unravel_index(int(np.argmin(rel)), rel.shape)
            if rel[a, b] >= ratio:
                return labels
            labels[labels == ids[b]] = ids[a]

    return merge


def core_centroids(x: np.ndarray, labels: np.ndarray, keep: float) -> tuple[np.ndarray, np.ndarray]:
    """Each cluster's centroid over the `keep` share of its members nearest its full centroid."""
    ids, cents = centroids_of(x, labels)
    core = []
    for i, c in zip(ids, cents, strict=True):
        members = x[labels == i]
        sims = members @ c
        cut = np.quantile(sims, 1 - keep)
        core.append(members[sims >= cut].mean(axis=0))
    return ids, l2_normalize(np.stack(core))


def core_merge(threshold: float, keep: float = 0.5) -> Merge:
    """The engine's raw-centroid merge rule, with centroids of each cluster's core (the windows most
    like it), so windows that mix two voices do not pull the two centroids together."""

    def merge(raw: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return merge_similar_clusters(
            l2_normalize(raw), labels, threshold, centroids=lambda x, owned: core_centroids(x, owned, keep)
        )

    return merge


def rules() -> dict[str, tuple[OfflineClusteringConfig, Merge | None]]:
    base = OfflineClusteringConfig()
    out: dict[str, tuple[OfflineClusteringConfig, Merge | None]] = {"raw 0.85 (default)": (base, None)}
    for ratio in (1.0, 1.25, 1.5, 2.0):
        out[f"relative {ratio}"] = (replace(base, merge_threshold=None), relative_merge(ratio))
    for threshold in (0.85, 0.88, 0.9):
        for keep in (0.5, 0.25):
            out[f"core {keep} {threshold}"] = (replace(base, merge_threshold=None), core_merge(threshold, keep))
    return out


def with_merge(merge: Merge) -> Callable[..., np.ndarray]:
    def cluster(embeddings: np.ndarray, config: OfflineClusteringConfig, *args: object) -> np.ndarray:
        labels = cluster_embeddings(embeddings, config, *args)  # type: ignore[arg-type]
        return relabel_by_first_appearance(merge(np.asarray(embeddings, dtype=np.float64), labels))

    return cluster


REAL_EMBED_PLAN = pipeline.embed_plan


def cached_array(cache: Path, prefix: str, audio: np.ndarray, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """`compute()`, stored under `cache` by `prefix` and the audio's hash, read back when present."""
    path = cache / f"{prefix}-{hashlib.sha1(audio.tobytes()).hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    out = compute()
    np.save(path, out)
    return out


def cached_embed_plan(cache: Path, model_key: str) -> Callable[..., np.ndarray]:
    def embed(model: EmbeddingModel, audio: np.ndarray, plan: object, *args: object, **kwargs: object) -> np.ndarray:
        return cached_array(cache, model_key, audio, lambda: REAL_EMBED_PLAN(model, audio, plan, *args, **kwargs))  # type: ignore[arg-type]

    return embed


def cached_speech(cache: Path, diarizer: pipeline.Diarizer) -> Callable[[np.ndarray], Speech]:
    real = diarizer.speech

    def stacked(audio: np.ndarray) -> np.ndarray:
        computed = real(audio)  # one VAD run for both rows
        return np.stack([computed.mask, computed.heard])

    def speech(audio: np.ndarray) -> Speech:
        both = cached_array(cache, "vad-heard", audio, lambda: stacked(audio))
        return Speech(both[0], both[1])

    return speech


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--phases", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("runs/merge-probe"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    step = pipeline.DiarizationConfig().step_seconds
    sets = {
        "ami-dev": at_phases(load_ami_split("development"), args.phases, step),
        "ami-train": at_phases(load_ami_split("train"), args.phases, step),
        "sim-dev": at_phases(load_sim_dev(), args.phases, step),
    }
    print(f"{'model':<28} {'rule':<22} " + " ".join(f"{n:>10}" for n in sets))
    for model_path in args.models:
        model = EmbeddingModel.load(model_path)
        setattr(pipeline, "embed_plan", cached_embed_plan(args.cache, model.sha256[:12]))  # noqa: B010
        for name, (clustering, merge) in rules().items():
            setattr(pipeline, "cluster_embeddings", with_merge(merge) if merge else cluster_embeddings)  # noqa: B010
            diarizer = pipeline.Diarizer(replace(pipeline.DiarizationConfig(), clustering=clustering), model)
            setattr(diarizer, "speech", cached_speech(args.cache, diarizer))  # noqa: B010
            cells = " ".join(f"{100 * der:9.2f}%" for der in set_ders(diarizer, sets).values())
            print(f"{Path(model_path).stem[:28]:<28} {name:<22} {cells}", flush=True)


def set_ders(diarizer: pipeline.Diarizer, sets: dict[str, list[DevItem]]) -> dict[str, float]:
    def run(audio: np.ndarray, _count: int) -> list[Segment]:
        return diarizer.diarize(audio)

    return {name: score_items(name, items, run).collar0.der for name, items in sets.items()}


if __name__ == "__main__":
    main()
