"""Grid search of the offline pipeline's settings on the DEV sets only (AMI dev + simulated dev).

Embeddings are computed once per (item, window, step) and reused across clustering settings.
Usage: python research/scripts/tune_engine.py  -> prints a table sorted by mean DER (collar 0).
"""

from __future__ import annotations

import itertools

import numpy as np

from pipelines.evaluation.devsets import load_dev_sets
from voiceflow.clustering.offline import OfflineClusteringConfig, cluster_embeddings
from voiceflow.embedding import EmbeddingModel
from voiceflow.pipeline import (
    DiarizationConfig,
    absorb_short_turns,
    labels_from_votes,
    plan_windows,
    window_samples,
    window_votes,
)
from voiceflow.scoring import score_der
from voiceflow.segments import frames_to_segments
from voiceflow.vad import FRAME_SECONDS, SileroVAD, VADConfig, probabilities_to_mask


def main() -> None:
    sets = load_dev_sets()
    model = EmbeddingModel.load()
    vad = VADConfig(threshold=0.3, speech_pad_seconds=0.15, min_silence_seconds=0.3)
    probs = {it.uri: SileroVAD().probabilities(it.audio) for items in sets.values() for it in items}
    rows = []
    for window, step in [(1.6, 0.4), (1.6, 0.2), (2.0, 0.4), (1.2, 0.3)]:
        base = DiarizationConfig(window_seconds=window, step_seconds=step, vad=vad)
        cache = {}
        for items in sets.values():
            for it in items:
                mask = probabilities_to_mask(probs[it.uri], vad)
                plan = plan_windows(mask, base)
                cache[it.uri] = (mask, plan, model.embed_batched(window_samples(it.audio, plan)))
        for th, frac, min_turn in itertools.product([0.3, 0.35, 0.4, 0.45, 0.5, 0.55], [0.0, 0.05, 0.1], [0.2, 0.4]):
            clustering = OfflineClusteringConfig(threshold=th, min_cluster_fraction=frac)
            ders = {}
            for name, items in sets.items():
                hyps = {}
                for it in items:
                    mask, plan, emb = cache[it.uri]
                    labels = cluster_embeddings(emb, clustering)
                    frames = labels_from_votes(mask, window_votes(len(mask), plan, labels, int(labels.max()) + 1))
                    frames = absorb_short_turns(frames, round(min_turn / FRAME_SECONDS))
                    hyps[it.uri] = frames_to_segments(frames, FRAME_SECONDS)
                refs = {it.uri: it.reference for it in items}
                ders[name] = score_der(refs, hyps, {it.uri: it.uem for it in items}).der
            rows.append((float(np.mean(list(ders.values()))), window, step, th, frac, min_turn, ders))
    rows.sort(key=lambda r: r[0])
    for mean, window, step, th, frac, min_turn, ders in rows[:25]:
        detail = " ".join(f"{k}={100 * v:.2f}%" for k, v in ders.items())
        print(f"mean={100 * mean:.2f}% window={window} step={step} th={th} minfrac={frac} minturn={min_turn} {detail}")


if __name__ == "__main__":
    main()
