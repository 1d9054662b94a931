"""The VAD's padding at the edges of speech, after clustering: keep it for the windows, trim it
from the answer?

    OPENBLAS_NUM_THREADS=1 .venv/bin/python research/edge_padding.py [--out research/results/vad]

The VAD's rules pad speech by 0.2 s on each side (voiceflow.vad.VADConfig), chosen on the dev suite
for the whole pipeline: the padding decides which windows are embedded as well as what the answer
calls speech. Each variant keeps the default pipeline (windows, clustering, pause rules) and trims
only the answer: at the start and end of every speech region, frames the VAD's hysteresis did not
hear are kept up to `keep` seconds. Chosen before any was scored: both edges to 0 / 0.1 s, the
onset only or the offset only to 0. Each fold's variant is chosen on the other folds, then gated
against the default.
"""

from __future__ import annotations

import sys

import numpy as np
from frame_label_study import BASELINE, Study, Variant, run_study, runs_of

from voiceflow.pipeline import DiarizationConfig
from voiceflow.vad import FRAME_SECONDS


def trim_edges(labels: np.ndarray, heard: np.ndarray, onset: int | None, offset: int | None) -> np.ndarray:
    """Each speech region's unheard leading (trailing) frames cut to `onset` (`offset`) frames;
    None leaves that edge as it is."""
    out = labels.copy()
    for start, end in runs_of(labels >= 0):
        first_heard = np.flatnonzero(heard[start:end])
        if not first_heard.size:
            continue  # a region the VAD never heard (a filled blip): leave it to the pipeline's rules
        lead, last = int(first_heard[0]), int(first_heard[-1])
        if onset is not None and lead > onset:
            out[start : start + lead - onset] = -1
        tail = end - start - 1 - last
        if offset is not None and tail > offset:
            out[end - (tail - offset) : end] = -1
    return out


def variants() -> dict[str, Variant]:
    out: dict[str, Variant] = {BASELINE: lambda a: a.frame_labels}
    tenth = round(0.1 / FRAME_SECONDS)
    for name, onset, offset in (
        ("both 0", 0, 0),
        ("both 0.1 s", tenth, tenth),
        ("onset 0", 0, None),
        ("offset 0", None, 0),
    ):
        out[name] = lambda a, onset=onset, offset=offset: trim_edges(a.frame_labels, a.speech.heard, onset, offset)
    return out


STUDY = Study(
    script="research/edge_padding.py",
    report="edge-padding.md",
    baseline=DiarizationConfig(),
    shipped=DiarizationConfig(),  # nothing shipped from this study: the check compares the baseline twice
    shipped_variant=BASELINE,
    variants=variants(),
)

if __name__ == "__main__":
    raise SystemExit(run_study(STUDY, sys.argv[1:], __doc__))
