"""A speaker's own pauses after clustering: bridge a silence with the same speaker on both sides.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python research/own_pauses.py [--out research/results/vad]

The VAD's rules bridge pauses the VAD heard shorter than ~0.4 s (0.3 s minimum silence; the 0.2 s
padding each side closes up to 0.4 s more), whoever speaks. References bridge a speaker's own
pauses under 1.0 s (the AMI annotators', and the suite's simulated references since suite-3): a
mask gap under ~0.6 s with the same speaker on both sides is speech there, and with two speakers
on either side it is silence (the engine's `silence_between_speakers`). Each variant takes the
offline hypothesis without this step (`offline.own_pause_seconds: 0`, `Diarizer.analyse`'s frame
labels) and fills every silence of at most `fill` seconds whose neighbours are the same speaker.
Chosen before any was scored: fill 0.2 / 0.4 / 0.6 s (every fold chose 0.6 s); 0.8 and 1.0 s
were added in a second run. Each fold's variant is chosen on the other folds, then gated against
the engine without it; `--check N` asserts on N items that it and the variant the engine ships
(`fill 0.6 s`, `segments.bridge_own_pauses`) equal `Diarizer.diarize`'s.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from change_gaps import pooled, row_for, runs_of
from gate_columns import column_report, publish

from pipelines.evaluation.suite.command import context, load_items, suite_spec
from pipelines.evaluation.suite.folds import cross_validate
from pipelines.evaluation.suite.report import detail_table
from voiceflow.clustering.labels import UNBOUNDED
from voiceflow.pipeline import DiarizationConfig, Diarizer
from voiceflow.segments import frames_to_segments
from voiceflow.vad import FRAME_SECONDS

BASELINE = "default"  # the engine before a speaker's own pauses were bridged
SHIPPED = "fill 0.6 s"


def fill_own_pauses(labels: np.ndarray, max_frames: int) -> np.ndarray:
    """Silences of at most `max_frames` with the same speaker on both sides take that speaker."""
    out = labels.copy()
    for start, end in runs_of(labels < 0):
        if start > 0 and end < len(labels) and end - start <= max_frames and labels[start - 1] == labels[end]:
            out[start:end] = labels[end]
    return out


def variants() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {BASELINE: lambda labels: labels}
    # 0.8 and 1.0 s were added in a second run, after the first chose its largest value, 0.6 s, on
    # every fold: beyond the references' 1.0 s (a mask gap of 0.6 s is a heard pause of ~1.0 s).
    for fill_s in (0.2, 0.4, 0.6, 0.8, 1.0):
        frames = round(fill_s / FRAME_SECONDS)
        out[f"fill {fill_s:g} s"] = lambda labels, frames=frames: fill_own_pauses(labels, frames)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="dev")
    parser.add_argument("--out", default="research/results/vad")
    parser.add_argument("--check", type=int, default=2, help="assert baseline and shipped are the engine's on N")
    args = parser.parse_args(argv)

    spec = suite_spec(args.suite)
    items = sorted(load_items(spec), key=lambda it: len(it.audio))
    ctx = context(spec)
    model = ctx.model(None)
    diarizer = Diarizer(DiarizationConfig(own_pause_seconds=0.0), model, vad_factory=ctx.vad.factory)
    shipped = Diarizer(DiarizationConfig(), model, vad_factory=ctx.vad.factory)
    table = variants()
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in table}
    for i, item in enumerate(items):
        analysis = diarizer.analyse(item.audio, UNBOUNDED, None, None)
        labels = analysis.frame_labels if analysis else np.full(len(item.audio) // 512, -1)
        if i < args.check:
            assert frames_to_segments(labels, FRAME_SECONDS) == diarizer.diarize(item.audio), item.uri
            ships = frames_to_segments(table[SHIPPED](labels), FRAME_SECONDS)
            assert ships == shipped.diarize(item.audio), item.uri
        for name, variant in table.items():
            rows[name].append(row_for(item, frames_to_segments(variant(labels), FRAME_SECONDS)))
        print(f"  {i + 1}/{len(items)} {item.uri}", file=sys.stderr, flush=True)

    fold_of = {r["recording"]: r["fold"] for r in rows[BASELINE]}
    candidates = [name for name in table if name != BASELINE]
    chosen = cross_validate(fold_of, candidates, lambda name, uris: pooled(rows[name], set(uris)))
    rows["chosen per fold"] = [r for name in candidates for r in rows[name] if chosen[r["fold"]] == name]
    columns = {BASELINE: rows[BASELINE], "chosen per fold": rows["chosen per fold"], **{n: rows[n] for n in candidates}}
    command = "OPENBLAS_NUM_THREADS=1 .venv/bin/python research/own_pauses.py " + " ".join(argv or sys.argv[1:])
    note = f"{len(items)} recordings; per fold: {json.dumps(chosen)}"
    summaries, gates, head = column_report(command.strip(), note, columns, BASELINE)
    parts = [*head, "", "Gate against the default (paired bootstrap per stratum):", ""]
    parts += [f"- {name}: {verdict}" for name, verdict in gates.items()]
    parts += ["", "#### chosen per fold", "", detail_table(summaries["chosen per fold"])]
    path = publish("\n".join(parts), args.out, "own-pauses.md")
    path.with_suffix(".json").write_text(json.dumps({"chosen": chosen, "gates": gates, "rows": rows}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
