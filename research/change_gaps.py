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
(`offline.speaker_change_reach_seconds: 0`; its turns from `Diarizer.analyse`), and `--check N`
asserts on N items that the baseline and the variant the engine now ships (`gap pad0 reach0.5
interior`, `segments.silence_between_speakers`) equal `Diarizer.diarize`'s.
Each fold's variant is chosen on the other folds, then gated.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from gate_columns import column_report, publish

from pipelines.evaluation.suite.command import context, load_items, suite_spec
from pipelines.evaluation.suite.folds import cross_validate
from pipelines.evaluation.suite.report import detail_table
from pipelines.evaluation.suite.runner import EvalItem, score_recording
from voiceflow.clustering.labels import UNBOUNDED
from voiceflow.pipeline import DiarizationConfig, Diarizer
from voiceflow.segments import Segment, frames_to_segments
from voiceflow.vad import FRAME_SECONDS

BASELINE = "default"  # the engine before speaker changes gave pauses back
SHIPPED = "gap pad0 reach0.5 interior"


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


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


def variants() -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Chosen before any was scored: reach 0.5 / 1.0 s, pad none (snap) / 0 / 0.1 / 0.2 s."""
    out: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {BASELINE: lambda labels, _heard: labels}
    for reach_s in (0.5, 1.0):
        reach = round(reach_s / FRAME_SECONDS)
        for pad_s in (None, 0.0, 0.1, 0.2):
            pad = None if pad_s is None else round(pad_s / FRAME_SECONDS)
            name = f"{'snap' if pad is None else f'gap pad{pad_s:g}'} reach{reach_s:g}"
            out[name] = lambda labels, heard, pad=pad, reach=reach: restore_change_gaps(labels, heard, pad, reach)
    # Added in a second run, after the first's results: the pause strictly inside speech (a region's
    # padded edges are not pauses), the form a live stream can place without renaming a draft.
    for reach_s in (0.5, 1.0):
        reach = round(reach_s / FRAME_SECONDS)
        out[f"gap pad0 reach{reach_s:g} interior"] = lambda labels, heard, reach=reach: restore_change_gaps(
            labels, heard, 0, reach, interior=True
        )
    return out


def row_for(item: EvalItem, hyp: list[Segment]) -> dict[str, Any]:
    row = {"uri": item.uri, "recording": item.recording, "tags": list(item.tags), "fold": item.fold}
    row.update(score_recording(item.reference, hyp, item.uem))
    return row


def pooled(rows: list[dict[str, Any]], uris: set[str]) -> float:
    chosen = [r for r in rows if r["recording"] in uris]
    return sum(r["der"]["errors"] for r in chosen) / max(sum(r["der"]["total"] for r in chosen), 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="dev")
    parser.add_argument("--out", default="research/results/vad")
    parser.add_argument("--check", type=int, default=2, help="assert the rebuilt default is the engine's on N items")
    args = parser.parse_args(argv)

    spec = suite_spec(args.suite)
    items = sorted(load_items(spec), key=lambda it: len(it.audio))
    ctx = context(spec)
    model = ctx.model(None)
    # The steps after this one stay off (own pauses came later: research/own_pauses.py).
    base = DiarizationConfig(own_pause_seconds=0.0)
    diarizer = Diarizer(replace(base, speaker_change_reach_seconds=0.0), model, vad_factory=ctx.vad.factory)
    shipped = Diarizer(base, model, vad_factory=ctx.vad.factory)
    table = variants()
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in table}
    for i, item in enumerate(items):
        analysis = diarizer.analyse(item.audio, UNBOUNDED, None, None)
        labels = analysis.turns if analysis else np.full(len(item.audio) // 512, -1)
        heard = analysis.speech.heard if analysis else np.zeros(len(labels), dtype=bool)
        if i < args.check:
            assert frames_to_segments(labels, FRAME_SECONDS) == diarizer.diarize(item.audio), item.uri
            shipped_labels = table[SHIPPED](labels, heard)
            assert frames_to_segments(shipped_labels, FRAME_SECONDS) == shipped.diarize(item.audio), item.uri
        for name, variant in table.items():
            rows[name].append(row_for(item, frames_to_segments(variant(labels, heard), FRAME_SECONDS)))
        log(f"  {i + 1}/{len(items)} {item.uri}")

    fold_of = {r["recording"]: r["fold"] for r in rows[BASELINE]}
    candidates = [name for name in table if name != BASELINE]
    chosen = cross_validate(fold_of, candidates, lambda name, uris: pooled(rows[name], set(uris)))
    rows["chosen per fold"] = [r for name in candidates for r in rows[name] if chosen[r["fold"]] == name]
    columns = {BASELINE: rows[BASELINE], "chosen per fold": rows["chosen per fold"], **{n: rows[n] for n in candidates}}
    command = "OPENBLAS_NUM_THREADS=1 .venv/bin/python research/change_gaps.py " + " ".join(argv or sys.argv[1:])
    note = f"{len(items)} recordings; per fold: {json.dumps(chosen)}"
    summaries, gates, head = column_report(command.strip(), note, columns, BASELINE)
    parts = [*head, "", "Gate against the default (paired bootstrap per stratum):", ""]
    parts += [f"- {name}: {verdict}" for name, verdict in gates.items()]
    for name in (BASELINE, "chosen per fold"):
        parts += ["", f"#### {name}", "", detail_table(summaries[name])]
    path = publish("\n".join(parts), args.out, "change-gaps.md")
    path.with_suffix(".json").write_text(json.dumps({"chosen": chosen, "gates": gates, "rows": rows}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
