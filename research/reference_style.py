"""The dev suite scored against simulated references drawn the way the AMI references are.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python research/reference_style.py [--bridge 1.0] \
        --system t50p20=offline.vad.speech_pad_seconds=0.2 [--system ...] [--out research/results/vad]

A simulated reference ends where its source's energy does (10 ms frames, pauses under 0.2 s
bridged: `pipelines.simulation.voiced_mask`); in the 12 AMI references no speaker pauses for less
than 1.0 s. The two disagree on the VAD's settings (docs/evaluation.md). This scores the same
systems (the engine, hypotheses from the suite's run cache, so a system `voiceflow evaluate` has
run costs only its scoring) against simulated references in which each speaker's pauses under
`--bridge` seconds are speech; the AMI references are kept as they are. Then, as
`research/vad_settings_cv.py` does: each fold's column chosen on the other folds, and the gate.
A reading of what the suite would choose under the other convention. (It was run on generator
`suite-2`; `suite-3` bridges pauses under 1.0 s itself, so there only a longer --bridge changes
anything.)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from gate_columns import publish
from vad_settings_cv import BASELINE, cv_report

from pipelines.evaluation.suite.command import context, load_items, suite_spec
from pipelines.evaluation.suite.runner import OFFLINE, SIM_TAG, run_system
from pipelines.evaluation.suite.systems import BUILTIN, parse_system
from voiceflow.segments import Segment


def bridged(reference: list[Segment], bridge: float) -> list[Segment]:
    """Each speaker's segments with the pauses shorter than `bridge` seconds filled."""
    out: list[Segment] = []
    for speaker in sorted({s.speaker for s in reference}):
        merged: list[Segment] = []
        for seg in sorted((s for s in reference if s.speaker == speaker), key=lambda s: s.start):
            if merged and seg.start - merged[-1].end < bridge:
                merged[-1] = Segment(merged[-1].start, max(merged[-1].end, seg.end), speaker)
            else:
                merged.append(Segment(seg.start, seg.end, speaker))
        out.extend(merged)
    return sorted(out, key=lambda s: (s.start, s.speaker))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bridge", type=float, default=1.0, help="seconds: shorter pauses are speech")
    parser.add_argument("--system", action="append", default=[], help="NAME=KEY=VALUE,... as voiceflow evaluate")
    parser.add_argument("--out", default="research/results/vad")
    args = parser.parse_args(argv)

    spec = suite_spec("dev")
    items = [
        dataclasses.replace(item, reference=bridged(item.reference, args.bridge)) if SIM_TAG in item.tags else item
        for item in load_items(spec)
    ]
    ctx = context(spec)
    systems = [BUILTIN[BASELINE], *(parse_system(text) for text in args.system)]
    rows = {system.name: run_system(system, items, OFFLINE, ctx) for system in systems}
    command = " ".join(["research/reference_style.py", *(argv if argv is not None else sys.argv[1:])])
    markdown = cv_report(rows, command, f", simulated references with pauses under {args.bridge} s bridged")
    publish(markdown, args.out, f"dev-vad-cv-bridge-{args.bridge}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
