"""Silence between two speakers: give back the pause the VAD's rules bridged where the speaker changes.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python research/change_gaps.py [--out research/results/vad]

The VAD's rules (voiceflow.vad.VADConfig: 0.3 s minimum silence, 0.2 s padding each side) bridge
a speaker's own short pauses, as human references do. They bridge the pause between two different
speakers too, and there a reference has silence: on the suite, false alarm in silence grows with
turn taking (2.0 % of speech with one speaker, 8-9 % with 4-8, 10.8 % on short turns;
research/results/overlap-suite3). Each variant here takes the default offline hypothesis and,
at every speaker change inside bridged speech, finds the nearest pause the VAD heard (its
hysteresis alone, before bridging and padding) within `reach` of the change, moves the change
into that pause and makes the pause silence again, less `pad` on each side. `snap` moves the
change only. The first run's "pause" was any frame inside the speech mask the VAD did not hear,
a region's padded edges included; the `interior` variants (added in a second run, after the
first's results) take only pauses with speech on both sides. VAD probabilities and
embeddings come from the suite's caches; the baseline is the engine without this step
(`offline.pauses.speaker_change_reach_seconds: 0`; its turns from `Diarizer.analyse`), and `--check N`
asserts on N items that the baseline and the variant the engine now ships (`gap pad0 reach0.5
interior`, `segments.silence_between_speakers`) equal `Diarizer.diarize`'s.
Each fold's variant is chosen on the other folds, then gated.
"""

from __future__ import annotations

import sys

import numpy as np
from frame_label_study import BASELINE, Study, Variant, run_study, runs_of

from voiceflow.pauses import PauseRules
from voiceflow.pipeline import DiarizationConfig
from voiceflow.vad import FRAME_SECONDS

SHIPPED = "gap pad0 reach0.5 interior"


def restore_change_gaps(
    labels: np.ndarray, heard: np.ndarray, pad: int | None, reach: int, interior: bool = False
) -> np.ndarray:
    """`labels` (-1 = no speech) with each speaker change inside speech moved into the nearest pause
    the VAD heard within `reach` frames, and that pause silence again less `pad` frames each side
    (`pad` None: the change moved to the pause's middle, nothing removed)."""
    out = labels.copy()
    changes = np.flatnonzero((labels[1:] >= 0) & (labels[:-1] >= 0) & (labels[1:] != labels[:-1])) + 1
    pauses = runs_of((labels >= 0) & ~heard)
    if interior:  # only pauses with speech on both sides (not a region's padded edges)
        pauses = [(s, e) for s, e in pauses if s > 0 and e < len(labels) and labels[s - 1] >= 0 and labels[e] >= 0]
    if not len(changes) or not pauses:
        return out
    for c in changes:
        before, after = int(labels[c - 1]), int(labels[c])
        dist = [max(s - c, c - e, 0) for s, e in pauses]
        k = int(np.argmin(dist))
        if dist[k] > reach:
            continue
        s, e = pauses[k]
        lo, hi = min(c, s), max(c, e)
        if np.any((changes > lo) & (changes < hi) & (changes != c)):
            continue  # another change between: leave both alone
        if pad is None or e - s <= 2 * pad:
            cut = (s + e) // 2
            out[lo:cut], out[cut:hi] = before, after
            continue
        out[lo : s + pad], out[s + pad : e - pad], out[e - pad : hi] = before, -1, after
    return out


def variants() -> dict[str, Variant]:
    """Chosen before any was scored: reach 0.5 / 1.0 s, pad none (snap) / 0 / 0.1 / 0.2 s. Each maps
    the baseline's analysis (its frame labels are the turns: no pause rule) to frame labels."""
    out: dict[str, Variant] = {BASELINE: lambda a: a.frame_labels}
    for reach_s in (0.5, 1.0):
        reach = round(reach_s / FRAME_SECONDS)
        for pad_s in (None, 0.0, 0.1, 0.2):
            pad = None if pad_s is None else round(pad_s / FRAME_SECONDS)
            name = f"{'snap' if pad is None else f'gap pad{pad_s:g}'} reach{reach_s:g}"
            out[name] = lambda a, pad=pad, reach=reach: restore_change_gaps(a.frame_labels, a.speech.heard, pad, reach)
    # Added in a second run, after the first's results: the pause strictly inside speech (a region's
    # padded edges are not pauses), the form a live stream can place without renaming a draft.
    for reach_s in (0.5, 1.0):
        reach = round(reach_s / FRAME_SECONDS)
        out[f"gap pad0 reach{reach_s:g} interior"] = lambda a, reach=reach: restore_change_gaps(
            a.frame_labels, a.speech.heard, 0, reach, interior=True
        )
    return out


STUDY = Study(
    script="research/change_gaps.py",
    report="change-gaps.md",
    # The engine before speaker changes gave pauses back; the steps after this one stay off (own
    # pauses came later: research/own_pauses.py).
    baseline=DiarizationConfig(pauses=PauseRules(0.0, 0.0)),
    shipped=DiarizationConfig(pauses=PauseRules(own_pause_seconds=0.0)),
    shipped_variant=SHIPPED,
    variants=variants(),
)

if __name__ == "__main__":
    raise SystemExit(run_study(STUDY, sys.argv[1:], __doc__))
