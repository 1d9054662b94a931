"""One study of the offline pipeline's last steps: frame-label variants over one analysis per
recording, each fold's variant chosen on the other folds, gated against the baseline.

Used by research/change_gaps.py and research/own_pauses.py. Per recording the baseline engine's
`Diarizer.analyse` runs once (VAD probabilities and embeddings from the suite's caches); every
variant maps that analysis to frame labels, which are scored. `--check N` asserts on N recordings
that the baseline variant and the variant the engine ships equal what `Diarizer.diarize` gives
under the two configs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from gate_columns import column_report, publish

from pipelines.evaluation.suite.command import context, load_items, suite_spec
from pipelines.evaluation.suite.folds import cross_validate
from pipelines.evaluation.suite.report import detail_table
from pipelines.evaluation.suite.runner import EvalItem, score_recording
from voiceflow.clustering.labels import UNBOUNDED
from voiceflow.pipeline import DiarizationConfig, Diarizer, FrameAnalysis
from voiceflow.segments import Segment, frames_to_segments, true_runs
from voiceflow.vad import CHUNK, FRAME_SECONDS

BASELINE = "default"
Variant = Callable[[FrameAnalysis], np.ndarray]


@dataclass(frozen=True)
class Study:
    script: str  # research/<name>.py, for the command line in the report
    report: str  # the report's file name under --out
    baseline: DiarizationConfig  # the engine the variants start from (their BASELINE variant)
    shipped: DiarizationConfig  # the engine with the variant it ships
    shipped_variant: str
    variants: Mapping[str, Variant]  # BASELINE first


def row_for(item: EvalItem, hyp: list[Segment]) -> dict[str, Any]:
    row = {"uri": item.uri, "recording": item.recording, "tags": list(item.tags), "fold": item.fold}
    row.update(score_recording(item.reference, hyp, item.uem))
    return row


def pooled(rows: list[dict[str, Any]], uris: set[str]) -> float:
    chosen = [r for r in rows if r["recording"] in uris]
    return sum(r["der"]["errors"] for r in chosen) / max(sum(r["der"]["total"] for r in chosen), 1e-9)


def runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True."""
    starts, ends = true_runs(flags)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def run_study(study: Study, argv: list[str] | None = None, description: str | None = None) -> int:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="dev")
    parser.add_argument("--out", default="research/results/vad")
    parser.add_argument("--check", type=int, default=2, help="assert baseline and shipped are the engine's on N")
    args = parser.parse_args(argv)

    spec = suite_spec(args.suite)
    items = sorted(load_items(spec), key=lambda it: len(it.audio))
    ctx = context(spec)
    model = ctx.model(None)
    baseline = Diarizer(study.baseline, model, vad_factory=ctx.vad.factory)
    shipped = Diarizer(study.shipped, model, vad_factory=ctx.vad.factory)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in study.variants}
    for i, item in enumerate(items):
        analysis = baseline.analyse(item.audio, UNBOUNDED, None, None)
        labels = {
            name: variant(analysis) if analysis else np.full(len(item.audio) // CHUNK, -1)
            for name, variant in study.variants.items()
        }
        if i < args.check:
            for name, diarizer in ((BASELINE, baseline), (study.shipped_variant, shipped)):
                assert frames_to_segments(labels[name], FRAME_SECONDS) == diarizer.diarize(item.audio), item.uri
        for name, frame_labels in labels.items():
            rows[name].append(row_for(item, frames_to_segments(frame_labels, FRAME_SECONDS)))
        print(f"  {i + 1}/{len(items)} {item.uri}", file=sys.stderr, flush=True)

    fold_of = {r["recording"]: r["fold"] for r in rows[BASELINE]}
    candidates = [name for name in study.variants if name != BASELINE]
    chosen = cross_validate(fold_of, candidates, lambda name, uris: pooled(rows[name], set(uris)))
    rows["chosen per fold"] = [r for name in candidates for r in rows[name] if chosen[r["fold"]] == name]
    columns = {BASELINE: rows[BASELINE], "chosen per fold": rows["chosen per fold"], **{n: rows[n] for n in candidates}}
    command = f"OPENBLAS_NUM_THREADS=1 .venv/bin/python {study.script} " + " ".join(argv or sys.argv[1:])
    note = f"{len(items)} recordings; per fold: {json.dumps(chosen)}"
    summaries, gates, head = column_report(command.strip(), note, columns, BASELINE)
    parts = [*head, "", "Gate against the default (paired bootstrap per stratum):", ""]
    parts += [f"- {name}: {verdict}" for name, verdict in gates.items()]
    for name in (BASELINE, "chosen per fold"):
        parts += ["", f"#### {name}", "", detail_table(summaries[name])]
    path = publish("\n".join(parts), args.out, study.report)
    path.with_suffix(".json").write_text(json.dumps({"chosen": chosen, "gates": gates, "rows": rows}) + "\n")
    return 0
