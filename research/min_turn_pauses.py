"""The shortest speaker turn, again, now that pauses are counted as references count them.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python research/min_turn_pauses.py [--out research/results/vad]

`offline.min_turn_seconds` (0.3 s: a shorter speaker run inside speech takes its longer neighbour's
label) was chosen before the pause rules existed (research/results/clustering/dev-offline-min-turn-suite3.md:
no setting better). The rules now run after it and decide pauses around every change of speaker,
so a short turn moves more than it did. Each variant rebuilds the frame labels from the default
analysis's votes with another minimum turn, then applies the default pause rules. Chosen before
any was scored: 0, 0.15, 0.5 and 0.8 s. Each fold's variant is chosen on the other folds, then
gated against the default.
"""

from __future__ import annotations

import sys

import numpy as np
from frame_label_study import BASELINE, Study, Variant, run_study

from voiceflow.pipeline import DiarizationConfig, FrameAnalysis, absorb_short_turns, labels_from_votes
from voiceflow.segments import bridge_own_pauses, silence_between_speakers
from voiceflow.vad import FRAME_SECONDS


def with_min_turn(a: FrameAnalysis, seconds: float) -> np.ndarray:
    pauses = DiarizationConfig().pauses
    turns = absorb_short_turns(labels_from_votes(a.speech.mask, a.votes), round(seconds / FRAME_SECONDS))
    labels = silence_between_speakers(turns, a.speech.heard, pauses.reach_frames(FRAME_SECONDS))
    return bridge_own_pauses(labels, pauses.own_pause_frames(FRAME_SECONDS))


def variants() -> dict[str, Variant]:
    out: dict[str, Variant] = {BASELINE: lambda a: a.frame_labels}
    for seconds in (0.0, 0.15, 0.5, 0.8):
        out[f"min turn {seconds:g} s"] = lambda a, seconds=seconds: with_min_turn(a, seconds)
    return out


STUDY = Study(
    script="research/min_turn_pauses.py",
    report="min-turn-pauses.md",
    baseline=DiarizationConfig(),
    shipped=DiarizationConfig(min_turn_seconds=0.3),
    shipped_variant=BASELINE,
    variants=variants(),
)

if __name__ == "__main__":
    raise SystemExit(run_study(STUDY, sys.argv[1:], __doc__))
