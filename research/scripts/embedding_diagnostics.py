"""Why an embedding model wins or loses on the AMI dev recordings, beside the bundled GE2E.

    .venv/bin/python research/scripts/embedding_diagnostics.py MODEL.onnx [MODEL.onnx ...]

Prints, per model (GE2E first), on the engine's own windows (VAD + 1.6 s windows every 0.2 s):
1. per AMI dev recording: mean cosine to GE2E's embedding of the same windows, and the
   same-vs-different-speaker EER over windows that one reference speaker fills (>= 80 %, others
   <= 10 %), on recording-centred embeddings — how well the model separates the two voices;
2. per AMI recording (dev and train): the raw-centroid cosine of the 2-cluster split, the number
   the engine's merge rule (merge_threshold 0.85 + the model's shift) compares, on the model's own
   split and on GE2E's (the same windows in both models);
3. a grid over the clustering threshold and merge threshold chosen on the AMI *train* excerpts
   (never on dev), with the dev DER at the train-chosen point (`--grid` prints every point).
Needs ../shared.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from pipelines.evaluation.devsets import load_ami_split, load_dev_sets
from pipelines.export.calibration import window_speakers
from pipelines.training.metrics import equal_error_rate
from voiceflow.clustering.offline import (
    OfflineClusteringConfig,
    centroids_of,
    cluster_embeddings,
    shift_merge_threshold,
)
from voiceflow.embedding import MODELS_DIR, EmbeddingModel, l2_normalize
from voiceflow.pipeline import (
    FRAME_SECONDS,
    Diarizer,
    WindowPlan,
    absorb_short_turns,
    embed_plan,
    labels_from_votes,
    plan_windows,
    window_votes,
)
from voiceflow.scoring import score_der
from voiceflow.segments import Segment, frames_to_segments

THRESHOLDS = (0.8, 0.85, 0.9, 0.95, 1.0)
MERGES = (None, 0.85, 0.88, 0.9, 0.92, 0.94)


def two_cluster_split(raw: np.ndarray) -> np.ndarray:
    x = l2_normalize(raw - raw.mean(axis=0))
    return fcluster(linkage(pdist(x, "cosine"), "average"), t=2, criterion="maxclust") - 1


def split_cosine(raw: np.ndarray, labels: np.ndarray) -> float:
    _, cents = centroids_of(l2_normalize(raw), labels)
    return float(cents[0] @ cents[1]) if len(cents) == 2 else float("nan")


def segments_for(
    item_cache: tuple[np.ndarray, WindowPlan, np.ndarray], clustering: OfflineClusteringConfig, d: Diarizer
) -> list[Segment]:
    mask, plan, emb = item_cache
    if len(plan.starts) == 0:
        return []
    labels = cluster_embeddings(emb, clustering)
    frames = labels_from_votes(mask, window_votes(len(mask), plan, labels, int(labels.max()) + 1))
    frames = absorb_short_turns(frames, round(d.config.min_turn_seconds / FRAME_SECONDS))
    return frames_to_segments(frames, FRAME_SECONDS)


def main() -> None:
    show_grid = "--grid" in sys.argv[1:]
    paths = [Path(MODELS_DIR) / "ge2e.onnx", *(Path(a) for a in sys.argv[1:] if a != "--grid")]
    sets = {"ami-trn": load_ami_split("train"), "ami-dev": load_dev_sets()["ami-dev"]}
    d = Diarizer()
    plans = {}
    for items in sets.values():
        for it in items:
            mask = d.speech(it.audio).mask
            plans[it.uri] = (mask, plan_windows(mask, d.config))
    ge2e_windows: dict[str, np.ndarray] = {}
    ge2e_splits: dict[str, np.ndarray] = {}  # GE2E's 2-cluster split, to compare models on the same windows
    for path in paths:
        model = EmbeddingModel.load(path)
        cache = {}
        for items in sets.values():
            for it in items:
                mask, plan = plans[it.uri]
                # the engine's own reading of the model (staggered segments for a per-frame model)
                emb = embed_plan(model, it.audio, plan) if len(plan.starts) else np.zeros((0, 1))
                cache[it.uri] = (mask, plan, emb)
        print(f"== {model.version} ({path}), merge_threshold_shift {model.merge_threshold_shift:+.4f}")
        for it in sets["ami-dev"]:
            raw = l2_normalize(cache[it.uri][2].astype(np.float64))
            ge2e_windows.setdefault(it.uri, raw)
            labels = window_speakers(it, cache[it.uri][1], d.config.window_seconds)
            keep = labels >= 0
            centred = l2_normalize(raw - raw.mean(axis=0))
            print(
                f"  {it.uri}: cos to GE2E {np.mean(np.sum(raw * ge2e_windows[it.uri], axis=1)):.3f}  "
                f"window EER {100 * equal_error_rate(centred[keep], labels[keep]):.1f} % "
                f"({int(keep.sum())} one-speaker windows)"
            )
        raws = {u: c[2].astype(np.float64) for u, c in cache.items() if len(c[1].starts) > 3}
        splits = {u: two_cluster_split(raw) for u, raw in raws.items()}
        cosines = {u: split_cosine(raw, splits[u]) for u, raw in raws.items()}
        print("  2-cluster raw-centroid cosine: " + " ".join(f"{u} {v:.3f}" for u, v in cosines.items()))
        for u, split in splits.items():
            ge2e_splits.setdefault(u, split)
        paired = {u: split_cosine(raw, ge2e_splits[u]) for u, raw in raws.items()}
        print("  the same on GE2E's split: " + " ".join(f"{u} {v:.3f}" for u, v in paired.items()))

        def ders(clustering: OfflineClusteringConfig, cache: dict[str, Any] = cache) -> dict[str, float]:
            return {
                name: score_der(
                    {it.uri: it.reference for it in items},
                    {it.uri: segments_for(cache[it.uri], clustering, d) for it in items},
                    {it.uri: it.uem for it in items},
                ).der
                for name, items in sets.items()
            }

        grid = [
            (t, m, ders(OfflineClusteringConfig(threshold=t, merge_threshold=m)))
            for t, m in itertools.product(THRESHOLDS, MERGES)
        ]
        t, m, best = min(grid, key=lambda row: row[2]["ami-trn"])
        default = ders(shift_merge_threshold(OfflineClusteringConfig(), model.merge_threshold_shift))
        print("  engine defaults: " + "  ".join(f"{k} {100 * v:.2f} %" for k, v in default.items()))
        print(
            f"  chosen on ami-trn (threshold {t}, merge {m}): "
            + "  ".join(f"{k} {100 * v:.2f} %" for k, v in best.items())
        )
        for t, m, row in grid if show_grid else []:
            print(f"    threshold {t} merge {m}: " + "  ".join(f"{k} {100 * v:.2f} %" for k, v in row.items()))


if __name__ == "__main__":
    main()
