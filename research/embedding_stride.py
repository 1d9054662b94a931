"""Streaming with fewer embeddings: one every k-th 0.48 s hop instead of every hop (issue 25).

    OPENBLAS_NUM_THREADS=1 nice -n 15 .venv/bin/python research/embedding_stride.py [--workers 2]

The INT8 embedding is ~60 % of a stream's CPU in the pod (py-spy on a worker at 160 streams), and
it is not batchable across streams (docs/evaluation.md, "The INT8 student"). Embedding every
second hop halves it. This measures what that costs in DER on the dev suite, from the hops
`research/streaming_clustering_cv.py` records (run that first: it fills the cache this reads).
A hop's embedding is of the 1.6 s ending at the hop whatever the stride, so dropping the recorded
embeddings of the skipped hops is what the session would compute. Variants, for the frames of a
hop that gets no embedding:

- `last`: they go to whoever spoke last (the labels block's rule for a hop with too little speech
  to embed); exact for the engine as it is.
- `next`: they wait for the next hop's embedding and take its speaker (the two hops' frames are
  labelled as one hop of 0.96 s; the speech decisions stay per 0.48 s hop).

`confirm_windows` counts embeddings, so at stride 2 the shipped 4 waits twice as long (~3.8 s)
before a new voice becomes a speaker. So each stride gets its online-clustering settings chosen by
cross-validation over the same grid (join threshold x confirm windows; for each fold the setting
with the lowest pooled DER on the other three folds, pipelines.evaluation.suite.folds), and each
cross-validated column is gated (`suite_gate`, paired bootstrap per stratum) against the shipped
session (stride 1, its shipped setting). The fixed rows are readings, not choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import streaming_clustering_cv as scv
from gate_columns import column_report

from pipelines.evaluation.suite.command import context, load_items, suite_spec
from pipelines.evaluation.suite.folds import cross_validate, pooled_loss
from pipelines.evaluation.suite.runner import der_only, score_recording
from voiceflow.clustering.online import OnlineClusterer
from voiceflow.config import EngineConfig
from voiceflow.segments import Segment

GRID = {"join_threshold": (0.45, 0.5, 0.55), "confirm_windows": (2, 3, 4, 6), "candidate_agreement": (0.5, 0.6)}
FAMILIES = {"stride 1": (1, "last"), "stride 2 next": (2, "next"), "stride 2 last": (2, "last")}
Setting = tuple[int, str, tuple[tuple[str, Any], ...]]  # stride, rule, clustering overrides


def settings(stride: int, rule: str, grid: dict[str, tuple[Any, ...]]) -> list[Setting]:
    return [(stride, rule, tuple(zip(grid, values, strict=True))) for values in itertools.product(*grid.values())]


def label(setting: Setting) -> str:
    stride, rule, overrides = setting
    return f"stride {stride} {rule}: " + ",".join(f"{k}={v}" for k, v in overrides)


def run(hops: dict[str, np.ndarray], config: EngineConfig, setting: Setting) -> list[Segment]:
    stride, rule, overrides = setting
    clustering = dataclasses.replace(config.streaming.clustering, **dict(overrides))
    return scv.replay(
        hops, OnlineClusterer(clustering), config.streaming.pauses.own_pause_seconds, stride, rule == "next"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="dev")
    parser.add_argument("--out", default="research/results/streaming")
    parser.add_argument(
        "--agreement",
        type=float,
        nargs="+",
        default=list(GRID["candidate_agreement"]),
        help="the candidate_agreement values of the grid (the first run had 0.5 only)",
    )
    parser.add_argument("--hops", help="the recorded hops' folder (default: the one for the engine's code as it is)")
    args = parser.parse_args(argv)

    spec = suite_spec(args.suite)
    items = load_items(spec)
    config = EngineConfig()
    from voiceflow.embedding import EmbeddingModel

    model = EmbeddingModel.load(None)
    folder = Path(args.hops) if args.hops else context(spec).cache / "streaming-hops" / scv.hops_key(model, config)
    missing = [it.uri for it in items if not (folder / f"{it.uri}.npz").is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} recordings have no recorded hops in {folder}: run streaming_clustering_cv.py")
    # the baseline is the session as it shipped before this comparison (one embedding per hop)
    default: Setting = (1, "last", (("join_threshold", 0.5), ("confirm_windows", 4), ("candidate_agreement", 0.5)))
    grid = {**GRID, "candidate_agreement": tuple(args.agreement)}
    family_settings = {name: settings(*family, grid) for name, family in FAMILIES.items()}
    assert default in family_settings["stride 1"], "the shipped setting must be in the grid"
    everything = sorted({s for fam in family_settings.values() for s in fam})
    hops_of: dict[str, dict[str, np.ndarray]] = {}
    counts: dict[str, dict[Setting, tuple[float, float]]] = {}
    embedded: dict[int, int] = {}
    for item in items:
        with np.load(folder / f"{item.uri}.npz") as f:
            hops = {key: f[key] for key in f.files}
        hops_of[item.uri] = hops
        counts[item.uri] = {s: der_only(item.reference, run(hops, config, s), item.uem) for s in everything}
        n = len(hops["starts"])
        for k in {s[0] for s in everything}:
            on_grid = [i for i in range(n) if (i + 1) % k == 0 or i == n - 1]
            embedded[k] = embedded.get(k, 0) + int(hops["has_emb"][on_grid].sum())
    fold_of, loss = pooled_loss(items, lambda s, uri: counts[uri][s])
    folds = sorted(set(fold_of.values()))
    columns: dict[str, dict[int, Setting]] = {"shipped (stride 1)": dict.fromkeys(folds, default)}
    for name, fam in family_settings.items():
        columns[f"cv {name}"] = cross_validate(fold_of, fam, loss)

    def rows_for(choice: dict[int, Setting]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            setting = choice[item.fold]
            row = {"uri": item.uri, "recording": item.recording, "tags": list(item.tags), "fold": item.fold}
            row.update(score_recording(item.reference, run(hops_of[item.uri], config, setting), item.uem))
            row["setting"] = label(setting)
            out.append(row)
        return out

    rows = {name: rows_for(choice) for name, choice in columns.items()}
    summaries, gates, head = column_report(
        " ".join(["research/embedding_stride.py", *(argv if argv is not None else sys.argv[1:])]),
        f"{len(items)} items; streaming `embedding` pipeline; each cv column is the held-out folds' rows with "
        "the setting chosen on the other folds. DER (collar 0) % [95 % interval]:",
        rows,
        "shipped (stride 1)",
    )
    everything_rec = sorted(fold_of)
    in_sample = sorted(everything, key=lambda s: loss(s, everything_rec))[:10]
    lines = [
        *head,
        "Embeddings computed: " + ", ".join(f"stride {k}: {c}" for k, c in sorted(embedded.items())),
        "Chosen per fold:\n\n" + "\n".join(f"- {n}: {[label(s) for s in c.values()]}" for n, c in columns.items()),
        "Stratum gate against the shipped session:\n\n" + "\n".join(f"- {n}: {g}" for n, g in gates.items()),
        "In-sample pooled DER (reading only), best 10:\n\n"
        + "\n".join(f"- {label(s)}: {100 * loss(s, everything_rec):.2f} %" for s in in_sample)
        + f"\n- shipped {label(default)}: {100 * loss(default, everything_rec):.2f} %",
    ]
    markdown = "\n\n".join(lines)
    print(markdown)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.suite}-embedding-stride.md").write_text(markdown + "\n")
    payload = {"summary": summaries, "gates": gates, "embedded": embedded, "rows": rows}
    (out / f"{args.suite}-embedding-stride.json").write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
