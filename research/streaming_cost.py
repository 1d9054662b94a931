"""CPU per audio second of one streaming session per pipeline (issue 24: does the overlap-aware
stream keep the pod's latency budget?).

    nice -n 5 .venv/bin/python research/streaming_cost.py [--recording dev-069] [--seconds 60]

Feeds one suite recording in 100 ms frames, as the pod receives them, and measures the process
CPU time of each `feed` (not wall time: the machine is shared). One session, no cross-stream
batching, so the figures compare pipelines; the pod's load generator measures latency under load.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import numpy as np

from pipelines.evaluation.suite.command import load_items, suite_spec
from voiceflow.config import PIPELINES, EngineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.selection import load_segmentation_model, make_streaming_session

FRAME = 1600  # 100 ms at 16 kHz


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recording", default="dev-069")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    item = next(it for it in load_items(suite_spec("dev")) if it.uri == args.recording)
    audio = item.audio[: round(args.seconds * 16000)]
    model = EmbeddingModel.load()
    print(f"{args.recording} ({', '.join(item.tags)}), first {len(audio) / 16000:.0f} s, 100 ms feeds")
    print("| pipeline | CPU ms per audio second | per feed p50 / p99 / max (ms) |")
    print("|---|---|---|")
    for pipeline in PIPELINES:
        config = replace(EngineConfig(), pipeline=pipeline)
        session = make_streaming_session(config, model, segmentation_model=load_segmentation_model(config))
        steps = []
        started = time.process_time()
        for i in range(0, len(audio), FRAME):
            t = time.process_time()
            session.feed(audio[i : i + FRAME])
            steps.append(1000 * (time.process_time() - t))
        session.finish()
        per_second = 1000 * (time.process_time() - started) / (len(audio) / 16000)
        p50, p99 = np.percentile(steps, [50, 99])
        print(f"| {pipeline} | {per_second:.1f} | {p50:.1f} / {p99:.1f} / {max(steps):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
