"""Quick look at single settings on the dev suite: pooled and a few strata, count accuracy.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python research/clustering_explore.py 'vbx.fb=5' 'vbx.fb=5,vbx.loop_p=0.9'

Each argument is a comma-separated list of overrides under offline.clustering (algorithm=vbx is
implied unless given). Reports are on the whole suite: exploration only; figures that are reported
come from research/clustering_comparison.py, which picks settings on the other folds.
"""

from __future__ import annotations

import sys

from pipelines.evaluation.suite.command import context, load_items, suite_spec
from pipelines.evaluation.suite.report import summarise
from pipelines.evaluation.suite.runner import OFFLINE, run_system
from pipelines.evaluation.suite.systems import SystemSpec

STRATA = ("pooled", "speakers:1", "speakers:2", "speakers:7-8", "channel:telephone", "channel:clean", "source:ami")


def main(args: list[str]) -> None:
    spec = suite_spec("dev")
    items = load_items(spec)
    ctx = context(spec)
    for text in args:
        overrides = [tuple(p.split("=", 1)) for p in text.split(",") if p]
        if not any(k == "algorithm" for k, _ in overrides):
            overrides.insert(0, ("algorithm", "vbx"))
        spec_ = SystemSpec(text, overrides=tuple((f"offline.clustering.{k}", v) for k, v in overrides))
        summary = summarise(run_system(spec_, items, OFFLINE, ctx), resamples=200)
        cells = [f"{s} {100 * summary[s]['der']['point']:.1f} ({100 * summary[s]['count_exact']:.0f}%)" for s in STRATA]
        print(f"{text:45s} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
