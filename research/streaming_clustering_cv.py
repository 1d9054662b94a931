"""Online-clustering settings for the streaming `embedding` pipeline, chosen on the dev suite by
cross-validation (issue 22, item 5), with the stratum gate against the streaming default.

    OPENBLAS_NUM_THREADS=1 nice -n 15 .venv/bin/python research/streaming_clustering_cv.py \
        [--workers 2] [--out research/results/streaming]

A streaming run costs its VAD and one embedding per `embedding_hops` 0.48 s hops; neither depends on the clustering
(voiceflow/streaming.py: speech -> embedding -> online labels -> aggregation, each block reading only
what the blocks before it wrote). So each recording's real session runs ONCE, with the online-labels
block wrapped to record what it is given at every hop (the hop's frames, its refined speech, its
embedding), cached under the suite's run cache. Every candidate setting then replays only the
online labels and the aggregation over those hops. The replay of the setting the session ran with
must give the real session's `finish()` segments exactly, on every recording (asserted).

Candidates: the cosine clusterer's join threshold x confirm windows x candidate agreement
("grid", settings the engine already has), and a research-only rule ("merge", below): two online
speakers whose centroids become more alike than `merge` are one speaker from then on (later
windows get the older label; labels already given never change). Each family's setting for fold f
is the one with the lowest pooled collar-0 DER on the other three folds
(pipelines.evaluation.suite.folds); the held-out rows are scored in full, summarised per stratum
with bootstrap intervals, and gated (pipelines.evaluation.gate.suite_gate) against the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from pipelines.evaluation.gate import suite_gate
from pipelines.evaluation.suite.command import compact_row, context, load_items, suite_spec
from pipelines.evaluation.suite.features import digest
from pipelines.evaluation.suite.folds import cross_validate, pooled_loss
from pipelines.evaluation.suite.report import der_table, detail_table, summarise
from pipelines.evaluation.suite.runner import EvalItem, der_only, score_recording
from voiceflow import STREAM_FEED_SAMPLES
from voiceflow.blocks.aggregation import FrameSegments
from voiceflow.blocks.base import Block, FrameHop
from voiceflow.blocks.clustering import OnlineLabels
from voiceflow.clustering.online import OnlineClusterer, OnlineClusteringConfig
from voiceflow.config import EngineConfig
from voiceflow.embedding import l2_normalize
from voiceflow.segments import Segment
from voiceflow.selection import make_streaming_session
from voiceflow.streaming import StreamingSession

GRID = {
    "join_threshold": (0.4, 0.45, 0.5, 0.55, 0.6, 0.65),
    "confirm_windows": (2, 4, 6),
    "candidate_agreement": (0.5, 0.6),
}
MERGE_GRID = {
    "join_threshold": (0.45, 0.5, 0.55, 0.6),
    "confirm_windows": (2, 4),
    "merge": (0.6, 0.7, 0.8),
}
# the rule as the brief words it: merge when two centroids are more alike than the join threshold
MERGE_TIED_GRID = {
    "join_threshold": GRID["join_threshold"],
    "confirm_windows": GRID["confirm_windows"],
    "merge": ("join",),
}
# added after the first run (declared before its results were seen): a confirmed candidate first
# asks whether its windows' MEAN joins a known speaker (four windows average out the noise that kept
# each from joining alone); no new setting
BIRTH_GRID = {"join_threshold": GRID["join_threshold"], "confirm_windows": GRID["confirm_windows"], "birth": ("check",)}


# ---------------------------------------------------------------- the research-only merge rule


@dataclasses.dataclass
class MergingClusterer(OnlineClusterer):
    """The cosine clusterer, plus: after a speaker's centroid moves (or a speaker is created), if
    it is more similar than `merge` to another live speaker's, the younger one is folded into the
    older. Later windows that would have joined either get the older label; past labels stay."""

    merge: float = 1.0
    _alias: list[int] = dataclasses.field(default_factory=list)

    def assign(self, embedding: np.ndarray) -> int | None:
        before = self.num_speakers
        emb = l2_normalize(np.asarray(embedding, dtype=np.float64).reshape(-1))
        if not self._sums:
            index: int | None = self._start_speaker(emb)
        else:
            live = [i for i in range(self.num_speakers) if self._alias[i] == i]
            sims = self.centroids()[live] @ emb
            best = live[int(np.argmax(sims))]
            if float(np.max(sims)) >= self.config.join_threshold or len(live) >= self.config.max_speakers:
                self._candidates.clear()
                self._update(best, emb)
                index = best
            else:
                index = self._hold_candidate(emb)
        self._alias.extend(range(before, self.num_speakers))
        if index is not None:
            index = self._maybe_merge(index)
        return index

    def _maybe_merge(self, index: int) -> int:
        live = [i for i in range(self.num_speakers) if self._alias[i] == i and i != index]
        if not live:
            return index
        cents = self.centroids()
        sims = cents[live] @ cents[index]
        other = live[int(np.argmax(sims))]
        if float(np.max(sims)) < self.merge:
            return index
        keep, gone = min(index, other), max(index, other)
        self._sums[keep] = self._sums[keep] + self._sums[gone]
        self._counts[keep] += self._counts[gone]
        self._alias[gone] = keep
        return keep


# ---------------------------------------------------------------- recording and replay


@dataclasses.dataclass
class BirthCheckClusterer(OnlineClusterer):
    """The cosine clusterer, except that a candidate confirmed as a new speaker joins the known
    speaker its windows' mean is most like instead, when that clears the join threshold."""

    def assign(self, embedding: np.ndarray) -> int | None:
        pending = list(self._candidates)
        before = self.num_speakers
        index = super().assign(embedding)
        if index is None or self.num_speakers == before or before == 0:
            return index
        # a speaker was just created from `members`: undo it if their mean joins a known one
        members = [*pending, l2_normalize(np.asarray(embedding, dtype=np.float64).reshape(-1))]
        members = members[-self.config.confirm_windows :]
        mean = l2_normalize(np.mean(members, axis=0))
        sims = self.centroids()[:before] @ mean
        best = int(np.argmax(sims))
        if sims[best] < self.config.join_threshold:
            return index
        self._sums.pop()
        self._counts.pop()
        for m in members:
            self._update(best, m)
        return best


class HopRecorder(Block[FrameHop]):
    """Stands in for the session's online-labels block: records each hop it is given, then runs it."""

    def __init__(self, inner: OnlineLabels) -> None:
        self.inner = inner
        self.context_samples = inner.context_samples
        self.hops: list[tuple[int, int, np.ndarray, np.ndarray | None]] = []

    def __call__(self, hop: FrameHop) -> None:
        emb = None if hop.embedding is None else np.array(hop.embedding, copy=True)
        self.hops.append((hop.start, hop.end, np.array(hop.speech, dtype=bool, copy=True), emb))
        self.inner(hop)

    def close(self) -> None:
        self.inner.close()

    def mutable_from(self, decided: int) -> int:
        return self.inner.mutable_from(decided)


def record(audio: np.ndarray, model: Any, config: EngineConfig) -> dict[str, np.ndarray]:
    """One real streaming session (as voiceflow.selection.stream_audio runs it), its labels block's
    inputs recorded; returns them with the session's own result."""
    session = make_streaming_session(config, model)
    assert isinstance(session, StreamingSession) and session.labels in session.speaker_blocks
    recorder = HopRecorder(session.labels)
    session.speaker_blocks = tuple(recorder if b is session.labels else b for b in session.speaker_blocks)
    for start in range(0, len(audio), STREAM_FEED_SAMPLES):
        session.feed(audio[start : start + STREAM_FEED_SAMPLES])
    result = session.finish()
    hops = recorder.hops
    embs = [e for _, _, _, e in hops if e is not None]
    dim = embs[0].shape[0] if embs else 0
    return {
        "starts": np.array([h[0] for h in hops], dtype=np.int64),
        "ends": np.array([h[1] for h in hops], dtype=np.int64),
        "speech": np.concatenate([h[2] for h in hops]) if hops else np.zeros(0, bool),
        "has_emb": np.array([h[3] is not None for h in hops], dtype=bool),
        "embs": np.stack(embs) if embs else np.zeros((0, dim), np.float32),
        "result_start": np.array([s.start for s in result]),
        "result_end": np.array([s.end for s in result]),
        "result_speaker": np.array([s.speaker for s in result], dtype=str),
        "clustering": np.array(json.dumps(dataclasses.asdict(config.streaming.clustering))),
    }


def replay(
    hops: dict[str, np.ndarray], clusterer: OnlineClusterer, max_gap: float, every: int = 1, wait: bool = False
) -> list[Segment]:
    """The online labels and the aggregation over recorded hops: the session's result for them.
    With `every` > 1 only every `every`-th hop (and the last) keeps its embedding (embedding_stride.py);
    the frames of a hop without one go to whoever spoke last or, with `wait`, join the next hop that has one."""
    labels = OnlineLabels(clusterer)
    offset, e, n = 0, 0, len(hops["starts"])
    waiting: list[tuple[int, int, np.ndarray]] = []
    for index, (start, end, has) in enumerate(zip(hops["starts"], hops["ends"], hops["has_emb"], strict=True)):
        speech = hops["speech"][offset : offset + int(end - start)]
        offset += int(end - start)
        embedding = None
        if has:
            embedding = hops["embs"][e]
            e += 1
        on_grid = (index + 1) % every == 0 or index == n - 1  # the final hop always embeds
        if wait:
            waiting.append((int(start), int(end), speech))
            if not on_grid:
                continue
            hop = FrameHop(waiting[0][0], waiting[-1][1], np.concatenate([w[2] for w in waiting]))
            waiting = []
        else:
            hop = FrameHop(int(start), int(end), speech)
        hop.embedding = embedding if on_grid else None
        labels(hop)
    labels.close()
    return FrameSegments([labels], max_gap).result()


def hops_key(model: Any, config: EngineConfig) -> str:
    """What the recorded hops depend on: the model, the session's settings but its clustering's,
    and the engine's code but the online clusterer's (changing the default there keeps the cache)."""
    import voiceflow

    root = Path(voiceflow.__file__).parent
    code = digest(*(p.read_bytes() for p in sorted(root.rglob("*.py")) if p.name != "online.py"))
    settings = repr((config.pipeline, dataclasses.replace(config.streaming, clustering=OnlineClusteringConfig())))
    return digest(model.bundle_digest, settings, code)


# ---------------------------------------------------------------- candidates

Candidate = tuple[str, dict[str, Any]]


def candidates() -> dict[str, list[Candidate]]:
    def name(values: dict[str, Any]) -> str:
        return ",".join(f"{k}={v}" for k, v in values.items())

    families: dict[str, dict[str, tuple[Any, ...]]] = {
        "grid": GRID,
        "merge": MERGE_GRID,
        "merge=join": MERGE_TIED_GRID,
        "birth-check": BIRTH_GRID,
    }
    return {
        family: [(name(v), v) for v in (dict(zip(g, p, strict=True)) for p in itertools.product(*g.values()))]
        for family, g in families.items()
    }


def make_clusterer(base: OnlineClusteringConfig, values: dict[str, Any]) -> OnlineClusterer:
    settings = {k: v for k, v in values.items() if k not in ("merge", "birth")}
    config = dataclasses.replace(base, **settings)
    if "birth" in values:
        return BirthCheckClusterer(config)
    if "merge" in values:
        merge = config.join_threshold if values["merge"] == "join" else float(values["merge"])
        return MergingClusterer(config, merge=merge)
    return OnlineClusterer(config)


# ---------------------------------------------------------------- workers

_ITEMS: list[EvalItem] = []
_STATE: dict[str, Any] = {}


def _record_one(i: int) -> tuple[str, float]:
    item = _ITEMS[i]
    path = Path(_STATE["folder"]) / f"{item.uri}.npz"
    if path.is_file():
        return item.uri, 0.0
    if "model" not in _STATE:
        from voiceflow.embedding import EmbeddingModel

        _STATE["model"] = EmbeddingModel.load(None)
    t0 = time.perf_counter()
    data = record(item.audio, _STATE["model"], _STATE["config"])
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    np.savez(tmp, **cast(dict[str, Any], data))
    os.replace(tmp, path)
    return item.uri, time.perf_counter() - t0


def _load_hops(uri: str) -> dict[str, np.ndarray]:
    with np.load(Path(_STATE["folder"]) / f"{uri}.npz") as f:
        return {k: f[k] for k in f.files}


def _score_one(i: int) -> tuple[str, dict[str, tuple[float, float]], bool]:
    """Every candidate's collar-0 DER counts on item i, and whether the replay reproduced the session."""
    item = _ITEMS[i]
    hops = _load_hops(item.uri)
    base, max_gap = _STATE["base"], _STATE["max_gap"]
    recorded = OnlineClusterer(OnlineClusteringConfig(**json.loads(str(hops["clustering"]))))
    again = replay(hops, recorded, max_gap)
    real = [
        Segment(float(a), float(b), str(s))
        for a, b, s in zip(hops["result_start"], hops["result_end"], hops["result_speaker"], strict=True)
    ]
    same = [(s.start, s.end, s.speaker) for s in again] == [(s.start, s.end, s.speaker) for s in real]
    counts = {}
    for family in _STATE["candidates"].values():
        for name, values in family:
            hyp = replay(hops, make_clusterer(base, values), max_gap)
            counts[name] = der_only(item.reference, hyp, item.uem)
    return item.uri, counts, same


def replay_row(i: int, clusterer: OnlineClusterer, label: str) -> dict[str, Any]:
    """Item i's full scoring row for its recorded hops replayed through `clusterer`."""
    item = _ITEMS[i]
    hyp = replay(_load_hops(item.uri), clusterer, _STATE["max_gap"])
    row = {"uri": item.uri, "recording": item.recording, "tags": list(item.tags), "fold": item.fold}
    row.update(score_recording(item.reference, hyp, item.uem))
    row["setting"] = label
    return row


def _full_row(job: tuple[int, str, dict[str, Any]]) -> dict[str, Any]:
    i, label, values = job
    return replay_row(i, make_clusterer(_STATE["base"], values), label)


def _map(workers: int, fn: Callable[[Any], Any], jobs: Sequence[Any], what: str) -> list[Any]:
    out = []
    t0 = time.perf_counter()
    if workers <= 1:
        iterator: Any = map(fn, jobs)
    else:
        pool = multiprocessing.get_context("fork").Pool(workers)
        iterator = pool.imap(fn, jobs)
    for k, value in enumerate(iterator, 1):
        out.append(value)
        if k % 20 == 0 or k == len(jobs):
            print(f"  {what}: {k}/{len(jobs)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    if workers > 1:
        pool.close()
        pool.join()
    return out


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="dev")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="research/results/streaming")
    args = parser.parse_args(argv)

    spec = suite_spec(args.suite)
    items = load_items(spec)
    ctx = context(spec)
    config = EngineConfig()
    assert config.pipeline == "embedding", "the replay covers the embedding pipeline's session only"
    from voiceflow.embedding import EmbeddingModel

    model = EmbeddingModel.load(None)
    folder = ctx.cache / "streaming-hops" / hops_key(model, config)
    folder.mkdir(parents=True, exist_ok=True)
    base = config.streaming.clustering
    cands = candidates()
    _ITEMS[:] = items
    _STATE.update(
        folder=str(folder),
        config=config,
        base=base,
        max_gap=config.streaming.pauses.own_pause_seconds,
        candidates=cands,
    )
    print(f"hops cache: {folder}", file=sys.stderr)

    t0 = time.perf_counter()
    timings = _map(args.workers, _record_one, range(len(items)), "streaming sessions recorded")
    record_seconds = time.perf_counter() - t0
    scored = _map(args.workers, _score_one, range(len(items)), "replayed and scored")
    reproduced = [uri for uri, _, same in scored if same]
    assert len(reproduced) == len(items), f"replay differs from the session on {len(items) - len(reproduced)} items"
    print(f"replay == real session on all {len(items)} items", file=sys.stderr)

    counts = {uri: c for uri, c, _ in scored}
    fold_of, loss = pooled_loss(items, lambda name, uri: counts[uri][name])

    everything = sorted(fold_of)
    default_values = {k: getattr(base, k) for k in GRID}
    default_name = ",".join(f"{k}={v}" for k, v in default_values.items())
    assert default_name in {n for n, _ in cands["grid"]}, "the default must be one of the grid's candidates"
    per_setting = {n: loss(n, everything) for fam in cands.values() for n, _ in fam}
    per_fold = {
        n: {f: loss(n, sorted(r for r in everything if fold_of[r] == f)) for f in sorted(set(fold_of.values()))}
        for n in per_setting
    }
    columns: dict[str, dict[int, tuple[str, dict[str, Any]]]] = {
        "default": {f: (default_name, default_values) for f in sorted(set(fold_of.values()))}
    }
    chosen_names: dict[str, dict[int, str]] = {}
    for family, cand in cands.items():
        values = dict(cand)
        chosen = cross_validate(fold_of, [n for n, _ in cand], loss)
        chosen_names[family] = chosen
        columns[f"cv {family}"] = {f: (n, values[n]) for f, n in chosen.items()}
    all_values = {n: v for fam in cands.values() for n, v in fam}
    chosen_all = cross_validate(fold_of, list(all_values), loss)
    chosen_names["all"] = chosen_all
    columns["cv all"] = {f: (n, all_values[n]) for f, n in chosen_all.items()}

    jobs = [(i, col, f) for col in columns for i, f in enumerate(it.fold for it in items)]
    rows_flat = _map(
        args.workers, _full_row, [(i, columns[col][f][0], columns[col][f][1]) for i, col, f in jobs], "full scoring"
    )
    rows: dict[str, list[dict[str, Any]]] = {col: [] for col in columns}
    for (_, col, _), row in zip(jobs, rows_flat, strict=True):
        rows[col].append(row)

    summaries = {col: summarise(r) for col, r in rows.items()}
    gates: dict[str, dict[str, Any]] = {}
    for col in columns:
        if col != "default":
            g = suite_gate([compact_row(x) for x in rows[col]], [compact_row(x) for x in rows["default"]])
            gates[col] = {"passed": g.passed, "reasons": list(g.reasons)}
    # reading only: the gate of the best settings chosen on the whole suite (what the folds forbid)
    in_sample: dict[str, dict[str, Any]] = {}
    for name in sorted(per_setting, key=per_setting.__getitem__)[:3]:
        fixed = _map(args.workers, _full_row, [(i, name, all_values[name]) for i in range(len(items))], name)
        g = suite_gate([compact_row(x) for x in fixed], [compact_row(x) for x in rows["default"]])
        in_sample[name] = {"passed": g.passed, "reasons": list(g.reasons)}
    command = " ".join(["research/streaming_clustering_cv.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}). Streaming (pipeline embedding): each family's "
        f"online-clustering setting chosen per fold on the other folds, each column the held-out folds' rows; "
        f"{len(items)} items; default = {default_name}; replay == real session on all {len(items)} items. "
        "DER (collar 0) per stratum, % [95 % bootstrap interval over recordings]:",
        der_table(summaries, list(columns)),
        "Chosen per fold:\n\n" + "\n".join(f"- {fam}: {dict(ch)}" for fam, ch in chosen_names.items()),
        "Stratum gate (pipelines.evaluation.gate.suite_gate) of each held-out column against the default:\n\n"
        + "\n".join(
            f"- {col}: {'PASS' if g['passed'] else 'REFUSED'} — {'; '.join(g['reasons'])}" for col, g in gates.items()
        ),
        "Pooled DER of every setting on the whole suite (in-sample; for reading, not choosing), best 12:\n\n"
        + "\n".join(
            f"- {n}: {100 * v:.2f} % (folds: {', '.join(f'{100 * x:.1f}' for x in per_fold[n].values())})"
            for n, v in sorted(per_setting.items(), key=lambda kv: kv[1])[:12]
        )
        + f"\n- default {default_name}: {100 * per_setting[default_name]:.2f} % (folds: "
        + ", ".join(f"{100 * x:.1f}" for x in per_fold[default_name].values())
        + ")",
        "Reading only, not a choice: the stratum gate of the three best in-sample settings, each chosen "
        "on the whole suite (the recordings it is then gated on):\n\n"
        + "\n".join(
            f"- {n}: {'PASS' if g['passed'] else 'REFUSED'} — {'; '.join(g['reasons'])}" for n, g in in_sample.items()
        ),
        *(f"#### {col}\n\n" + detail_table(summaries[col]) for col in columns),
    ]
    markdown = "\n\n".join(lines)
    print(markdown)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command,
        "spec": spec,
        "items": len(items),
        "hops_cache": str(folder),
        "record_seconds": record_seconds,
        "record_seconds_per_item": {uri: s for uri, s in timings},
        "default": default_name,
        "candidates": {fam: dict(c) for fam, c in cands.items()},
        "chosen_per_fold": chosen_names,
        "pooled_per_setting": per_setting,
        "pooled_per_setting_per_fold": per_fold,
        "summary": summaries,
        "in_sample_gate": in_sample,
        "gate": gates,
        "rows": rows,
    }
    (out / f"{args.suite}-online-cv.json").write_text(json.dumps(payload, indent=1) + "\n")
    (out / f"{args.suite}-online-cv.md").write_text(markdown + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
