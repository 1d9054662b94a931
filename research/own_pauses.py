"""A speaker's own pauses after clustering: bridge a silence with the same speaker on both sides.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python research/own_pauses.py [--out research/results/vad]

The VAD's rules bridge pauses the VAD heard shorter than ~0.4 s (0.3 s minimum silence; the 0.2 s
padding each side closes up to 0.4 s more), whoever speaks. References bridge a speaker's own
pauses under 1.0 s (the AMI annotators', and the suite's simulated references since suite-3): a
mask gap under ~0.6 s with the same speaker on both sides is speech there, and with two speakers
on either side it is silence (the engine's `silence_between_speakers`). Each variant takes the
offline hypothesis without this step (`offline.pauses.own_pause_seconds: 0`, `Diarizer.analyse`'s frame
labels) and fills every silence of at most `fill` seconds whose neighbours are the same speaker.
Chosen before any was scored: fill 0.2 / 0.4 / 0.6 s (every fold chose 0.6 s); 0.8 and 1.0 s
were added in a second run. Each fold's variant is chosen on the other folds, then gated against
the engine without it; `--check N` asserts on N items that it and the variant the engine ships
(`fill 0.6 s`, `segments.bridge_own_pauses`) equal `Diarizer.diarize`'s.
"""

from __future__ import annotations

import sys

import numpy as np
from frame_label_study import BASELINE, Study, Variant, run_study, runs_of

from voiceflow.pauses import PauseRules
from voiceflow.pipeline import DiarizationConfig
from voiceflow.vad import FRAME_SECONDS

SHIPPED = "fill 0.6 s"


def fill_own_pauses(labels: np.ndarray, max_frames: int) -> np.ndarray:
    """Silences of at most `max_frames` with the same speaker on both sides take that speaker."""
    out = labels.copy()
    for start, end in runs_of(labels < 0):
        if start > 0 and end < len(labels) and end - start <= max_frames and labels[start - 1] == labels[end]:
            out[start:end] = labels[end]
    return out


def variants() -> dict[str, Variant]:
    out: dict[str, Variant] = {BASELINE: lambda a: a.frame_labels}
    # 0.8 and 1.0 s were added in a second run, after the first chose its largest value, 0.6 s, on
    # every fold: beyond the references' 1.0 s (a mask gap of 0.6 s is a heard pause of ~1.0 s).
    for fill_s in (0.2, 0.4, 0.6, 0.8, 1.0):
        frames = round(fill_s / FRAME_SECONDS)
        out[f"fill {fill_s:g} s"] = lambda a, frames=frames: fill_own_pauses(a.frame_labels, frames)
    return out


STUDY = Study(
    script="research/own_pauses.py",
    report="own-pauses.md",
    baseline=DiarizationConfig(pauses=PauseRules(own_pause_seconds=0.0)),  # silence between speakers only
    shipped=DiarizationConfig(),
    shipped_variant=SHIPPED,
    variants=variants(),
)

if __name__ == "__main__":
    raise SystemExit(run_study(STUDY, sys.argv[1:], __doc__))
