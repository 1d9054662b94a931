"""Probe a staggered layout the engine cannot serve yet: segments of window + HOP every HOP samples.

    LAYOUT_HOP=9600 .venv/bin/python scripts/segment_hop_probe.py cli evaluate --model M.onnx --phases 5 ...
    LAYOUT_HOP=9600 .venv/bin/python scripts/segment_hop_probe.py cli train --preset full --out runs/hop600
    LAYOUT_HOP=9600 .venv/bin/python scripts/segment_hop_probe.py bench --streams 3 4 --rounds 5

`voiceflow.staggered.segment_layout` derives the hop from a whole number of streams K (hop =
window / (K - 1): 0.8 s for 3, 0.53 s for 4). This replaces the layout of K = 3 for one process,
in the engine and in training alike, so a model exported for 3 streams is trained, read and timed
with the given hop instead: each frame is read (window + HOP) / HOP times, with up to HOP of audio
before a window. A measurement aid for docs/pipelines.md, not a serving path: outside this
process such a model is read as 3 streams.
"""

from __future__ import annotations

import os
import runpy
import sys

import pipelines.training.staggered as training_layout
import voiceflow.staggered as engine_layout

PROBED_STREAMS = 3
original_layout = engine_layout.segment_layout


def probed_layout(window: int, streams: int) -> tuple[int, int]:
    hop = int(os.environ["LAYOUT_HOP"])
    if streams == PROBED_STREAMS:
        return window + hop, hop
    return original_layout(window, streams)


def main() -> int:
    hop = os.environ.get("LAYOUT_HOP", "")
    if not hop.isdigit() or int(hop) < 160:
        print("set LAYOUT_HOP to the segment hop in samples (>= 160), e.g. 9600 for 0.6 s", file=sys.stderr)
        return 2
    if len(sys.argv) < 2 or sys.argv[1] not in ("cli", "bench"):
        print("usage: segment_hop_probe.py cli|bench ARGS...", file=sys.stderr)
        return 2
    engine_layout.segment_layout = probed_layout
    training_layout.segment_layout = probed_layout
    what, rest = sys.argv[1], sys.argv[2:]
    if what == "bench":
        sys.argv = ["bench_staggered_reader.py", *rest]
        runpy.run_path("benchmarks/bench_staggered_reader.py", run_name="__main__")
        return 0
    from voiceflow.cli.main import main as voiceflow_main

    return voiceflow_main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
