"""Streaming with periodic re-clustering: does the offline count (VBx, ELBO) help live labels?

    OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python research/streaming_recluster.py [--workers 2]

Runs on the hops `research/streaming_clustering_cv.py` recorded (run that first: it fills the cache).
The online clusterer labels each window as it does today; every `every` windows the windows heard so
far are clustered again with the offline engine's VBx (count by ELBO, the model's PLDA), the new
clusters are matched to the live labels (Hungarian, on the windows they share), and each matched
label's centroid becomes its cluster's mean. A live label no cluster matches (the re-clustering
says it is part of someone else) stops taking windows ("retire"); a cluster no label matches (a speaker the
live labels merged into another) becomes a new label. Labels already given never change; only who
later windows go to does ("keep" variants: an unmatched live label keeps taking windows). Each
recording is replayed with the default and each setting; the setting per fold is chosen on the
other folds, and the held-out column is gated (pipelines.evaluation.gate.suite_gate) against the
default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

import numpy as np
import streaming_clustering_cv as cv
from gate_columns import publish
from scipy.optimize import linear_sum_assignment

from pipelines.evaluation.gate import suite_gate
from pipelines.evaluation.suite.command import compact_row, context, load_items, suite_spec
from pipelines.evaluation.suite.folds import cross_validate, pooled_loss
from pipelines.evaluation.suite.report import der_table, detail_table, summarise
from pipelines.evaluation.suite.runner import der_only
from voiceflow.clustering.online import OnlineClusterer, OnlineClusteringConfig
from voiceflow.clustering.plda import PLDA, model_plda
from voiceflow.clustering.vbx import VBxConfig, vbx_by_elbo
from voiceflow.config import EngineConfig
from voiceflow.embedding import l2_normalize

# windows (0.48 s hops with speech) between re-clusterings (~10, 20 s of speech), and whether a live
# label the re-clustering matches to no cluster stops taking windows ("retire") or stays ("keep")
SETTINGS: dict[str, tuple[int, bool] | None] = {
    "default": None,
    **{f"recluster every {n}, {'retire' if r else 'keep'}": (n, r) for n in (20, 40) for r in (True, False)},
}


@dataclasses.dataclass
class ReclusteringClusterer(OnlineClusterer):
    every: int = 20
    retire: bool = True  # a live label no cluster matches stops taking windows
    vbx: VBxConfig = dataclasses.field(default_factory=VBxConfig)
    max_history: int = 1500  # the last this many windows are re-clustered (bounded cost per stream)
    _raw: list[np.ndarray] = dataclasses.field(default_factory=list)
    _given: list[int] = dataclasses.field(default_factory=list)  # -1: a held candidate
    _retired: set[int] = dataclasses.field(default_factory=set)  # labels that take no more windows
    _since: int = 0

    def assign(self, embedding: np.ndarray) -> int | None:
        raw = np.asarray(embedding, dtype=np.float64).reshape(-1)
        emb = l2_normalize(raw)
        index = self._assign_active(emb)
        self._raw.append(raw)
        self._given.append(-1 if index is None else index)
        self._since += 1
        if self._since >= self.every:
            self._since = 0
            self._recluster()
        return index

    def _assign_active(self, emb: np.ndarray) -> int | None:
        live = [i for i in range(self.num_speakers) if i not in self._retired]
        if not live:
            return self._start_speaker(emb)
        sims = self.centroids()[live] @ emb
        best = live[int(np.argmax(sims))]
        if float(np.max(sims)) >= self.config.join_threshold or len(live) >= self.config.max_speakers:
            self._candidates.clear()
            self._update(best, emb)
            return best
        return self._hold_candidate(emb)

    def _recluster(self) -> None:
        assert self.plda is not None
        raw = np.stack(self._raw[-self.max_history :])
        given = np.array(self._given[-self.max_history :])
        unit = l2_normalize(raw)
        mean = np.zeros(raw.shape[1]) if self.centred else None
        features = self.plda.features(raw, self.vbx.lda_dim, mean)
        clusters = vbx_by_elbo(features, self.plda.phi(self.vbx.lda_dim), self.vbx)
        k = int(clusters.max()) + 1
        table = np.zeros((k, self.num_speakers))
        for c, g in zip(clusters, given, strict=True):
            if g >= 0:
                table[c, g] += 1
        rows, cols = linear_sum_assignment(-table)
        matched = {int(r): int(c) for r, c in zip(rows, cols, strict=True) if table[r, c] > 0}
        before = self.num_speakers
        for cluster in range(k):
            members = unit[clusters == cluster]
            if cluster in matched:
                label = matched[cluster]
                self._sums[label] = members.sum(axis=0)
                self._counts[label] = len(members)
            elif len(members) >= self.config.confirm_windows:
                self._sums.append(members.sum(axis=0))
                self._counts.append(len(members))
        self._retired = set(range(before)) - set(matched.values()) if self.retire else set()


_PLDA: dict[str, PLDA] = {}


def plda() -> PLDA:
    if "plda" not in _PLDA:
        from voiceflow.embedding import EmbeddingModel

        _PLDA["plda"] = model_plda(EmbeddingModel.load(None))
    return _PLDA["plda"]


def clusterer(base: OnlineClusteringConfig, setting: tuple[int, bool] | None) -> OnlineClusterer:
    if setting is None:
        return OnlineClusterer(base)
    every, retire = setting
    return ReclusteringClusterer(base, plda(), centred=True, every=every, retire=retire)


def _score(i: int) -> tuple[str, dict[str, tuple[float, float]]]:
    item = cv._ITEMS[i]
    hops = cv._load_hops(item.uri)
    base, max_gap = cv._STATE["base"], cv._STATE["max_gap"]
    out = {}
    for name, every in cv._STATE["settings"].items():
        out[name] = der_only(item.reference, cv.replay(hops, clusterer(base, every), max_gap), item.uem)
    return item.uri, out


def _row(job: tuple[int, str]) -> dict[str, Any]:
    i, name = job
    return cv.replay_row(i, clusterer(cv._STATE["base"], cv._STATE["settings"][name]), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="dev")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="only the first N items (a smoke test)")
    parser.add_argument("--out", default="research/results/streaming")
    args = parser.parse_args(argv)
    spec = suite_spec(args.suite)
    items = load_items(spec)
    if args.limit:
        items = items[: args.limit]
    ctx = context(spec)
    config = EngineConfig()
    from voiceflow.embedding import EmbeddingModel

    folder = ctx.cache / "streaming-hops" / cv.hops_key(EmbeddingModel.load(None), config)
    missing = [it.uri for it in items if not (folder / f"{it.uri}.npz").is_file()]
    if missing:
        raise SystemExit(f"{len(missing)} recordings have no recorded hops: run research/streaming_clustering_cv.py")
    settings = SETTINGS
    cv._ITEMS[:] = items
    cv._STATE.update(
        folder=str(folder),
        base=config.streaming.clustering,
        max_gap=config.streaming.pauses.own_pause_seconds,
        settings=settings,
    )
    t0 = time.perf_counter()
    scored = cv._map(args.workers, _score, range(len(items)), "replayed")
    counts = {uri: c for uri, c in scored}
    fold_of, loss = pooled_loss(items, lambda name, uri: counts[uri][name])
    everything = sorted(fold_of)
    pooled = {name: loss(name, everything) for name in settings}
    print("pooled DER per setting: " + json.dumps({k: round(100 * v, 2) for k, v in pooled.items()}), file=sys.stderr)
    candidates = [n for n in settings if n != "default"]
    chosen = cross_validate(fold_of, candidates, loss)
    columns = {"default": {f: "default" for f in chosen}, "recluster (cv)": chosen}
    jobs = [(i, col, columns[col][it.fold]) for col in columns for i, it in enumerate(items)]
    flat = cv._map(args.workers, _row, [(i, name) for i, _, name in jobs], "full scoring")
    rows: dict[str, list[dict[str, Any]]] = {col: [] for col in columns}
    for (_, col, _), row in zip(jobs, flat, strict=True):
        rows[col].append(row)
    summaries = {col: summarise(r) for col, r in rows.items()}
    gate = suite_gate([compact_row(x) for x in rows["recluster (cv)"]], [compact_row(x) for x in rows["default"]])
    command = " ".join(["research/streaming_recluster.py", *(argv if argv is not None else sys.argv[1:])])
    markdown = "\n\n".join(
        [
            f"Command: `{command}` ({time.strftime('%Y-%m-%d')}, {len(items)} items, "
            f"{time.perf_counter() - t0:.0f} s). Streaming (pipeline embedding): DER (collar 0) per stratum, "
            "% [95 % bootstrap interval over recordings]; `recluster (cv)` uses per fold the setting chosen "
            "on the other folds.",
            der_table(summaries, list(columns)),
            f"Chosen per fold: {dict(chosen)}",
            "Pooled DER of every setting on the whole suite (in-sample, for reading): "
            + ", ".join(f"{k} {100 * v:.2f} %" for k, v in pooled.items()),
            f"Stratum gate against the default: {'PASS' if gate.passed else 'REFUSED'} — {'; '.join(gate.reasons)}",
            *(f"#### {col}\n\n" + detail_table(summaries[col]) for col in columns),
        ]
    )
    publish(markdown, args.out, f"{args.suite}-recluster.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
