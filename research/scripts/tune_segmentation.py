"""Grid search of the segmentation pipelines' settings on the DEV sets only (AMI dev + simulated dev).

Offline: segmentation and local-speaker embeddings are computed once per (item, step) and reused
across clustering/reconstruction settings. Streaming: each setting reruns the stream.
Usage: python research/scripts/tune_segmentation.py [--model runs/seg-full/segmentation.onnx] [--streaming]
Prints tables sorted by mean DER (collar 0) over the two sets.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace

import numpy as np

from pipelines.evaluation.devsets import load_dev_sets
from voiceflow.clustering.constrained import ConstrainedOnlineConfig
from voiceflow.clustering.offline import OfflineClusteringConfig
from voiceflow.config import EngineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.scoring import score_der
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segmentation.offline import SegmentationDiarizer, SegmentationPipelineConfig, assemble
from voiceflow.segmentation.streaming import SegmentationStreamingConfig
from voiceflow.selection import make_streaming_session


def score(sets: dict, hyps: dict) -> dict[str, float]:
    out = {}
    for name, items in sets.items():
        report = score_der({i.uri: i.reference for i in items}, hyps, {i.uri: i.uem for i in items})
        out[name] = report.der
    return out


def offline(sets: dict, model: EmbeddingModel, seg: SegmentationModel) -> None:
    rows = []
    for step, speech in ((0.5, "segmentation"), (0.5, "vad")):
        base = SegmentationPipelineConfig(step_seconds=step, speech=speech)
        diarizer = SegmentationDiarizer(base, model, seg)
        local = {i.uri: diarizer.analyse(i.audio) for items in sets.values() for i in items}
        grid = itertools.product((0.7, 0.8, 0.9, 1.0), (0.05, 0.15), (0.85, None), (0.1, 0.3))
        for threshold, fraction, merge, off in grid:
            clustering = OfflineClusteringConfig(
                threshold=threshold, min_cluster_fraction=fraction, merge_threshold=merge
            )
            config = replace(base, clustering=clustering, min_off_seconds=off)
            hyps = {uri: assemble(lo, config) if lo is not None else [] for uri, lo in local.items()}
            ders = score(sets, hyps)
            rows.append((float(np.mean(list(ders.values()))), ders, (speech, threshold, fraction, merge, off)))
    rows.sort(key=lambda r: r[0])
    print("offline: mean  ami-dev  sim-dev  (speech, threshold, min_cluster_fraction, merge_threshold, min_off)")
    for mean, ders, params in rows[:15]:
        print(f"{100 * mean:6.2f} {100 * ders['ami-dev']:7.2f} {100 * ders['sim-dev']:7.2f}  {params}")


def streaming(sets: dict, model: EmbeddingModel, seg: SegmentationModel) -> None:
    rows = []
    # The shipped setting, its latency trade-off, and the first setting (no confirmation of new voices).
    grid = ((0.5, 1.0, 6, 5.0), (0.5, 1.0, 6, 2.5), (0.5, 1.0, 6, 1.0), (0.4, 1.0, 1, 5.0))
    for join, new, confirm, latency in grid:
        stream = SegmentationStreamingConfig(
            latency_seconds=latency,
            clustering=ConstrainedOnlineConfig(join_threshold=join, new_speaker_seconds=new, confirm_chunks=confirm),
        )
        config = replace(
            EngineConfig(pipeline="segmentation"), segmentation=replace(EngineConfig().segmentation, streaming=stream)
        )
        hyps = {}
        for items in sets.values():
            for item in items:
                session = make_streaming_session(config, model, None, seg)
                for i in range(0, len(item.audio), 8000):
                    session.feed(item.audio[i : i + 8000])
                hyps[item.uri] = session.finish()
        ders = score(sets, hyps)
        rows.append((float(np.mean(list(ders.values()))), ders, (join, new, confirm, latency)))
        print(
            f"{100 * rows[-1][0]:6.2f} {100 * ders['ami-dev']:7.2f} {100 * ders['sim-dev']:7.2f}  {rows[-1][2]}",
            flush=True,
        )
    rows.sort(key=lambda r: r[0])
    print("streaming: mean  ami-dev  sim-dev  (join_threshold, new_speaker_seconds, confirm_chunks, latency)")
    for mean, ders, params in rows[:10]:
        print(f"{100 * mean:6.2f} {100 * ders['ami-dev']:7.2f} {100 * ders['sim-dev']:7.2f}  {params}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="segmentation ONNX (default: the bundled one)")
    parser.add_argument("--streaming", action="store_true")
    args = parser.parse_args()
    sets = load_dev_sets()
    model = EmbeddingModel.load()
    seg = SegmentationModel.load(args.model)
    if args.streaming:
        streaming(sets, model, seg)
    else:
        offline(sets, model, seg)


if __name__ == "__main__":
    main()
