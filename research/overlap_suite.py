"""Overlapped speech on the dev suite (issue 24): overlap scored on its own, second-speaker rules,
speech detection of the segmentation pipeline, and the stratum gate, from one cached analysis.

    nice -n 5 .venv/bin/python research/overlap_suite.py \
        [--strata channel:meeting channel:telephone source:ami | --strata all] \
        [--out research/results/overlap] [--check 2]

Per recording, the expensive parts are computed once and cached next to the suite's own caches
(<suite cache>/runs/overlap/): the segmentation network's local speakers with their embeddings
and its P(speech)/P(2+) (the `segmentation` pipeline's analysis), and the overlap detector's
count vote and P(2+) (`embedding-overlap`). VAD and window embeddings come from the suite's
caches. Every hypothesis is then rebuilt with the engine's own functions, so a variant costs
clustering and bookkeeping, not networks; `--check N` asserts on N recordings that the rebuilt
`embedding`, `embedding-overlap` and `segmentation` hypotheses equal the engine's diarizers'.

Systems (all with the speaker count not given):
- `embedding`: today's default;
- `embedding-overlap`: + the detector's overlap (count vote), second speaker by the window votes
  (today's rule); `eo-nearest`: the nearest other speaker in time; `eo-cannot-link`: the local
  speakers of the segmentation network matched to the embedding clusters under cannot-link
  (Hungarian, one cluster per local speaker of a chunk), the overlapped frame's other local
  speaker named by that match (falls back to the votes where no other local speaker is active);
- `segmentation`: today's segmentation pipeline (the network alone decides where speech is);
  `seg-vad`: the VAD decides; `seg-vad+conf<t>`: the VAD's speech plus the network's where its
  P(speech) >= t.
Threshold curves: the detector's and the segmentation network's P(2+) against reference overlap
(precision/recall per threshold), and `embedding-overlap` DER parts per detector threshold.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.evaluation.gate import suite_gate
from pipelines.evaluation.overlap import (
    OverlapCounts,
    detection_curve,
    overlap_counts,
    precision,
    rates,
    recall,
    reference_overlap,
)
from pipelines.evaluation.suite.command import compact_row, context, load_items, suite_spec
from pipelines.evaluation.suite.features import digest
from pipelines.evaluation.suite.folds import cross_validate
from pipelines.evaluation.suite.report import POOLED, summarise
from pipelines.evaluation.suite.runner import Context, EvalItem, score_recording
from pipelines.evaluation.suite.stats import bootstrap_ratio, paired_bootstrap_difference
from voiceflow.clustering.constrained import match_to_centroids
from voiceflow.clustering.labels import UNBOUNDED
from voiceflow.clustering.offline import centroids_of
from voiceflow.config import EngineConfig
from voiceflow.embedding import l2_normalize
from voiceflow.pipeline import (
    Diarizer,
)
from voiceflow.segmentation.aggregation import overlap_add
from voiceflow.segmentation.model import SegmentationModel, default_overlap_model_path
from voiceflow.segmentation.offline import (
    LocalSpeakers,
    SegmentationDiarizer,
    SegmentationPipelineConfig,
    assemble,
    global_activity,
    resample_mask,
)
from voiceflow.segmentation.overlap import (
    NO_SPEAKER,
    OverlapConfig,
    overlap_decision,
    overlap_scores,
    second_speakers,
)
from voiceflow.segments import Segment, frames_to_segments, merge_per_speaker
from voiceflow.vad import FRAME_SECONDS, probabilities_to_mask

FOCUS = ("channel:meeting", "channel:telephone", "source:ami")
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CONFIDENT = (0.5, 0.7, 0.8, 0.9, 0.95)


def trained_ami(config: EngineConfig) -> set[str]:
    """AMI excerpts the segmentation network or the overlap detector saw in training (metadata)."""
    from voiceflow.segmentation.model import DEFAULT_SEGMENTATION_MODEL

    names: set[str] = set()
    for path in (config.segmentation.model or DEFAULT_SEGMENTATION_MODEL, default_overlap_model_path()):
        meta = Path(path).with_suffix(".json")
        if meta.is_file():
            names |= set(json.loads(meta.read_text()).get("config", {}).get("data", {}).get("ami_files") or [])
    return names


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- cached analysis of a recording


# LocalSpeakers' arrays as cached (its VAD `speech` is not: it is recomputed from the cached VAD)
LOCAL_ARRAYS = ("start_frames", "hard", "embeddings", "valid", "speech_probability", "overlap_probability")


def save_local(path: Path, local: LocalSpeakers) -> None:
    arrays: dict[str, Any] = {name: np.asarray(getattr(local, name)) for name in LOCAL_ARRAYS}
    np.savez(path, total_frames=local.total_frames, frame_seconds=local.frame_seconds, **arrays)


def load_local(path: Path) -> LocalSpeakers:
    """What save_local wrote, with `speech` None."""
    z = np.load(path)
    arrays = {name: z[name] for name in LOCAL_ARRAYS}
    return LocalSpeakers(total_frames=int(z["total_frames"]), frame_seconds=float(z["frame_seconds"]), **arrays)


@dataclass
class Primary:
    """The embedding pipeline up to its one-speaker-per-frame answer (VAD frames)."""

    mask: np.ndarray
    votes: np.ndarray
    frame_labels: np.ndarray
    embeddings: np.ndarray  # window embeddings
    labels: np.ndarray  # window cluster labels


@dataclass
class Analysis:
    primary: Primary
    local: LocalSpeakers  # the segmentation network's local speakers (speech = the VAD mask)
    detector_count: np.ndarray  # overlap detector's count vote, network frames
    detector_probability: np.ndarray  # its P(2+), network frames
    network_frame_seconds: float


class Analyser:
    def __init__(self, ctx: Context, config: EngineConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.model = ctx.model(None)
        self.diarizer = Diarizer(config.offline, self.model, vad_factory=ctx.vad.factory)
        self.segmentation = SegmentationModel.load(config.segmentation.model)
        self.detector = SegmentationModel.load(config.segmentation.overlap_model or default_overlap_model_path())
        self.seg_config = config.segmentation.offline
        self.folder = ctx.cache / "overlap"

    def primary(self, audio: np.ndarray) -> Primary:
        """Diarizer.diarize's frame labels and what decided them (`Diarizer.analyse`)."""
        a = self.diarizer.analyse(audio, UNBOUNDED, None, None)
        if a is None:
            mask = self.diarizer.speech(audio).mask
            empty = np.full(len(mask), -1)
            return Primary(mask, np.zeros((len(mask), 1)), empty, np.zeros((0, 0)), np.zeros(0, int))
        return Primary(a.speech.mask, a.votes, a.frame_labels, a.embeddings, a.window_labels)

    def local(self, audio: np.ndarray) -> LocalSpeakers:
        key = digest(
            audio,
            self.segmentation.sha256,
            self.model.bundle_digest,
            repr((self.seg_config.step_seconds, self.seg_config.local)),
        )
        path = self.folder / "local" / f"{key}.npz"
        if path.is_file():
            local = load_local(path)
        else:
            analysed = SegmentationDiarizer(
                dataclasses.replace(self.seg_config, speech="segmentation"), self.model, self.segmentation
            ).analyse(audio)
            if analysed is None:
                raise ValueError("audio too short for the segmentation network")
            local = analysed
            path.parent.mkdir(parents=True, exist_ok=True)
            save_local(path, local)
        # the VAD's speech on the network's frames, as analyse() computes it for speech != segmentation
        mask = probabilities_to_mask(self.ctx.vad.probabilities(audio), self.seg_config.vad)
        speech = resample_mask(mask, FRAME_SECONDS, local.total_frames, local.frame_seconds)
        return dataclasses.replace(local, speech=speech)

    def detector_scores(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        step = OverlapConfig().step_seconds
        path = self.folder / "detector" / f"{digest(audio, self.detector.sha256, str(step))}.npz"
        if path.is_file():
            z = np.load(path)
            return z["count"], z["probability"]
        scores = overlap_scores(audio, self.detector, step)
        frames = len(audio) // self.detector.frame_samples
        count, probability = scores if scores is not None else (np.zeros(frames, int), np.zeros(frames))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, count=count, probability=probability)
        return count, probability

    def analyse(self, item: EvalItem) -> Analysis:
        primary = self.primary(item.audio)
        count, probability = self.detector_scores(item.audio)
        return Analysis(
            primary,
            self.local(item.audio),
            count,
            probability,
            self.detector.frame_samples / 16000,
        )


# ---------------------------------------------------------------- hypotheses from an analysis


def embedding_segments(a: Analysis) -> list[Segment]:
    return frames_to_segments(a.primary.frame_labels, FRAME_SECONDS)


def detector_overlap(a: Analysis, threshold: float | None) -> np.ndarray:
    """[VAD frames] bool: the detector's overlap decision on the embedding pipeline's grid."""
    decided = overlap_decision(a.detector_count, a.detector_probability, threshold)
    return resample_mask(decided, a.network_frame_seconds, len(a.primary.mask), FRAME_SECONDS)


def with_second(a: Analysis, second: np.ndarray) -> list[Segment]:
    return merge_per_speaker(embedding_segments(a) + frames_to_segments(second, FRAME_SECONDS))


def embedding_overlap(a: Analysis, threshold: float | None = None, rule: str = "votes") -> list[Segment]:
    reach = round(OverlapConfig().max_reach_seconds / FRAME_SECONDS)
    p = a.primary
    return with_second(a, second_speakers(p.frame_labels, p.votes, detector_overlap(a, threshold), reach, rule))


def cannot_link_scores(a: Analysis, center: bool = True) -> np.ndarray:
    """[network frames, K] how strongly each embedding cluster is heard, from the segmentation
    network's local speakers matched to the clusters' centroids (no two local speakers of a chunk
    on one cluster), overlap-added over chunks like the segmentation pipeline's reconstruction."""
    p, local = a.primary, a.local
    k = int(p.labels.max()) + 1 if p.labels.size else 0
    if k == 0 or not local.valid.any():
        return np.zeros((local.total_frames, max(k, 1)))
    raw = l2_normalize(p.embeddings.astype(np.float64))
    mean = raw.mean(axis=0) if center and len(raw) > 1 else np.zeros(raw.shape[1])
    ids, centroids = centroids_of(l2_normalize(raw - mean), p.labels)
    projected = l2_normalize(l2_normalize(local.embeddings.astype(np.float64)) - mean)
    values = []
    for c in range(len(local.hard)):
        matched = match_to_centroids(projected[c] @ centroids.T, local.valid[c])
        chunk_labels = np.where(matched >= 0, ids[np.maximum(matched, 0)], -1)
        values.append(global_activity(local.hard[c], chunk_labels, k))
    return overlap_add(values, list(local.start_frames), local.total_frames)


def cannot_link_second(a: Analysis, overlap: np.ndarray, reach: int) -> np.ndarray:
    """[VAD frames] second speaker: the best-heard cluster other than the frame's own, by the
    cannot-link match of local speakers; where none is heard, today's votes rule."""
    p = a.primary
    scores = cannot_link_scores(a)
    fallback = second_speakers(p.frame_labels, p.votes, overlap, reach, "votes")
    out = np.full(len(p.frame_labels), NO_SPEAKER, dtype=int)
    index = np.minimum(
        ((np.arange(len(out)) + 0.5) * FRAME_SECONDS / a.local.frame_seconds).astype(int), len(scores) - 1
    )
    for i in np.flatnonzero(overlap & (p.frame_labels >= 0)):
        row = scores[index[i]].copy()
        row[p.frame_labels[i]] = 0.0
        out[i] = int(np.argmax(row)) if row.max() > 0 else fallback[i]
    return out


def eo_cannot_link(a: Analysis, threshold: float | None = None) -> list[Segment]:
    reach = round(OverlapConfig().max_reach_seconds / FRAME_SECONDS)
    return with_second(a, cannot_link_second(a, detector_overlap(a, threshold), reach))


def segmentation(a: Analysis, config: SegmentationPipelineConfig) -> list[Segment]:
    local = a.local if config.speech != "segmentation" else dataclasses.replace(a.local, speech=None)
    return assemble(local, config)


def systems(seg_config: SegmentationPipelineConfig) -> dict[str, Callable[[Analysis], list[Segment]]]:
    out: dict[str, Callable[[Analysis], list[Segment]]] = {
        "embedding": embedding_segments,
        "embedding-overlap": embedding_overlap,
        "eo-nearest": lambda a: embedding_overlap(a, None, "nearest"),
        "eo-cannot-link": eo_cannot_link,
        "segmentation": lambda a: segmentation(a, dataclasses.replace(seg_config, speech="segmentation")),
        "seg-vad": lambda a: segmentation(a, dataclasses.replace(seg_config, speech="vad")),
    }
    for t in CONFIDENT:
        cfg = dataclasses.replace(seg_config, speech="vad+confident", confident_speech=t)
        out[f"seg-vad+conf{t}"] = partial(segmentation, config=cfg)
        confirmed = dataclasses.replace(seg_config, speech="confirmed", confident_speech=t)
        out[f"seg-confirmed{t}"] = partial(segmentation, config=confirmed)
    return out


# ---------------------------------------------------------------- scoring


def row_for(item: EvalItem, hyp: list[Segment]) -> dict[str, Any]:
    row = {"uri": item.uri, "recording": item.recording, "tags": list(item.tags), "fold": item.fold}
    row.update(score_recording(item.reference, hyp, item.uem))
    row["overlap"] = overlap_counts(item.reference, hyp, item.uem).to_dict()
    return row


def curves(item: EvalItem, a: Analysis) -> dict[str, list[tuple[float, float, float]]]:
    """Detection counts per threshold for the detector's and the segmentation network's P(2+)."""
    out = {}
    for name, probability, seconds in (
        ("detector", a.detector_probability, a.network_frame_seconds),
        ("segmentation-network", a.local.overlap_probability, a.local.frame_seconds),
    ):
        assert probability is not None
        truth, scored = reference_overlap(item.reference, len(probability), seconds, item.uem)
        out[name] = detection_curve(truth[scored], probability[scored], THRESHOLDS)
    return out


def overlap_summary(rows: list[dict[str, Any]], groups: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Per stratum: pooled overlap rates, with bootstrap intervals over recordings for the DER parts."""
    by_rec: dict[str, OverlapCounts] = {}
    for r in rows:
        by_rec[r["recording"]] = by_rec.get(r["recording"], OverlapCounts()) + OverlapCounts.from_dict(r["overlap"])
    out = {}
    for name, recs in groups.items():
        counts = [by_rec[u] for u in recs]
        total = sum(counts, OverlapCounts())
        entry: dict[str, Any] = dict(rates(total), recordings=len(recs))
        speech = [c.speech for c in counts]
        for part in ("missed_overlap", "false_alarm_speech", "false_alarm_silence"):
            entry[f"{part}_interval"] = bootstrap_ratio([getattr(c, part) for c in counts], speech).to_dict()
        entry["precision_interval"] = bootstrap_ratio(
            [c.hit_overlap for c in counts], [c.hyp_overlap for c in counts]
        ).to_dict()
        entry["recall_interval"] = bootstrap_ratio(
            [c.hit_overlap for c in counts], [c.ref_overlap for c in counts]
        ).to_dict()
        out[name] = entry
    return out


def pooled_der(rows: list[dict[str, Any]], recordings: set[str]) -> float:
    errors = sum(r["der"]["errors"] for r in rows if r["recording"] in recordings)
    return errors / max(sum(r["der"]["total"] for r in rows if r["recording"] in recordings), 1e-9)


def cross_validated(runs: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """Each recording's row from the setting with the lowest pooled DER on the other folds."""
    first = next(iter(runs.values()))
    fold_of = {r["recording"]: r["fold"] for r in first}
    chosen = cross_validate(fold_of, list(runs), lambda name, uris: pooled_der(runs[name], set(uris)))
    return [r for name, rs in runs.items() for r in rs if chosen[r["fold"]] == name], chosen


def pooled_difference(candidate: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, float]:
    """Pooled DER(candidate) - DER(baseline), paired bootstrap 95 % interval over recordings."""

    def per_recording(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for r in rows:
            acc = out.setdefault(r["recording"], [0.0, 0.0])
            acc[0] += r["der"]["errors"]
            acc[1] += r["der"]["total"]
        return out

    c, b = per_recording(candidate), per_recording(baseline)
    uris = sorted(b)
    diff = paired_bootstrap_difference([c[u][0] for u in uris], [b[u][0] for u in uris], [b[u][1] for u in uris])
    return diff.to_dict()


def stratum_groups(items: list[EvalItem], strata: list[str]) -> dict[str, list[str]]:
    recs = sorted({it.recording for it in items})
    groups = {POOLED: recs}
    tags = {it.recording: it.tags for it in items}
    for s in strata:
        groups[s] = [r for r in recs if s in tags[r]]
    return groups


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def interval(d: dict[str, float]) -> str:
    return f"{pct(d['point'])} [{pct(d['low'])}, {pct(d['high'])}]"


def markdown(result: dict[str, Any]) -> str:
    lines = []
    names = list(result["der"])
    strata = list(result["der"][names[0]])
    lines.append("#### DER % (collar 0) [95 % interval]\n")
    lines.append("| stratum | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for s in strata:
        lines.append(f"| {s} | " + " | ".join(interval(result["der"][n][s]["der"]) for n in names) + " |")
    lines.append("\n#### Overlap: detection precision / recall %; DER parts (points of DER) [95 % interval]\n")
    lines.append(
        "| system | stratum | precision | recall | missed overlap | FA in speech | FA in silence "
        "| missed single | confusion |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for n in names:
        for s in strata:
            o, d = result["overlap"][n][s], result["der"][n][s]
            lines.append(
                f"| {n} | {s} | {pct(o['overlap_precision'])} | {pct(o['overlap_recall'])} | "
                f"{interval(o['missed_overlap_interval'])} | {interval(o['false_alarm_speech_interval'])} | "
                f"{interval(o['false_alarm_silence_interval'])} | {pct(o['missed_single'])} | {pct(d['confusion'])} |"
            )
    if result.get("curves"):
        lines.append("\n#### Overlap detection against the decision threshold (P(2+) >= t), pooled frames\n")
        lines.append("| network | stratum | " + " | ".join(f"t={t}" for t in THRESHOLDS) + " |")
        lines.append("|---|---|" + "---|" * len(THRESHOLDS))
        for net, by_stratum in result["curves"].items():
            for s, points in by_stratum.items():
                cells = [f"{pct(p['precision'])}/{pct(p['recall'])}" for p in points]
                lines.append(f"| {net} | {s} | " + " | ".join(cells) + " |")
        lines.append("\n(cells: precision/recall %)")
    if result.get("threshold_der"):
        lines.append(
            "\n#### embedding-overlap against the detector threshold: DER / missed overlap / FA in speech (%)\n"
        )
        lines.append("| stratum | " + " | ".join(result["threshold_der"]) + " |")
        lines.append("|---|" + "---|" * len(result["threshold_der"]))
        for s in strata:
            cells = [
                f"{pct(v[s]['der'])} / {pct(v[s]['missed_overlap'])} / {pct(v[s]['false_alarm_speech'])}"
                for v in result["threshold_der"].values()
            ]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    if result.get("gate"):
        lines.append("\n#### Stratum gate against `embedding` (paired bootstrap over recordings)\n")
        for name, g in result["gate"].items():
            d = g["pooled_difference"]
            lines.append(
                f"- {name}: {'PASS' if g['passed'] else 'FAIL'} (pooled difference {100 * d['point']:+.2f} points "
                f"[{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]) — {g['reason']}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="dev")
    parser.add_argument("--strata", nargs="*", default=list(FOCUS), help="tags to keep (any of), or 'all'")
    parser.add_argument("--systems", nargs="*", default=None)
    parser.add_argument("--out", default="research/results/overlap")
    parser.add_argument(
        "--check", type=int, default=0, help="assert the rebuilt hypotheses equal the engine's on N items"
    )
    parser.add_argument("--curves", action="store_true", help="threshold curves (detection and embedding-overlap DER)")
    parser.add_argument("--gate", action="store_true", help="stratum gate of each system against embedding")
    parser.add_argument(
        "--keep-trained-ami",
        action="store_true",
        help="keep the AMI excerpts the segmentation network and the detector trained on (left out by default)",
    )
    parser.add_argument("--segmentation-model", help="another segmentation network (ONNX) for the segmentation systems")
    parser.add_argument("--limit", type=int, default=0, help="only the N shortest items (a smoke test, never a result)")
    args = parser.parse_args(argv)

    spec = suite_spec(args.suite)
    items = load_items(spec)
    whole = args.strata == ["all"]
    config = EngineConfig()
    if args.segmentation_model:
        config = dataclasses.replace(
            config, segmentation=dataclasses.replace(config.segmentation, model=args.segmentation_model)
        )
    heard = set() if args.keep_trained_ami else trained_ami(config)
    if heard:
        log(f"left out (the networks trained on them): {', '.join(sorted(heard))}")
        items = [it for it in items if it.recording.removeprefix("ami-") not in heard]
    if not whole:
        items = [it for it in items if any(t in it.tags for t in args.strata)]
    # biggest stratum first is not needed; shortest first gives early partial results in the log
    items.sort(key=lambda it: len(it.audio))
    if args.limit:
        items = items[: args.limit]
    log(f"{len(items)} items ({sum(len(it.audio) for it in items) / 16000 / 60:.1f} min)")
    ctx = context(spec)
    analyser = Analyser(ctx, config)
    table = systems(config.segmentation.offline)
    chosen = args.systems or list(table)
    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in chosen}
    threshold_rows: dict[str, list[dict[str, Any]]] = {str(t): [] for t in THRESHOLDS} if args.curves else {}
    curve_counts: dict[str, dict[str, list[list[float]]]] = {}
    tags_of = {it.recording: it.tags for it in items}
    for i, item in enumerate(items):
        a = analyser.analyse(item)
        if i < args.check:
            check(analyser, item, a, config)
        for name in chosen:
            rows[name].append(row_for(item, table[name](a)))
        if args.curves:
            for t in THRESHOLDS:
                threshold_rows[str(t)].append(row_for(item, embedding_overlap(a, t)))
            for net, points in curves(item, a).items():
                for group in [POOLED, *tags_of[item.recording]]:
                    acc = curve_counts.setdefault(net, {}).setdefault(group, [[0.0, 0.0, 0.0] for _ in THRESHOLDS])
                    for k, p in enumerate(points):
                        acc[k] = [x + y for x, y in zip(acc[k], p, strict=True)]
        log(f"  {i + 1}/{len(items)} {item.uri} ({len(item.audio) / 16000:.0f} s)")

    if args.curves and "embedding-overlap" in rows:
        # the detector threshold as a tuned setting: each fold's from the other folds (count vote included)
        candidates = {"count": rows["embedding-overlap"], **threshold_rows}
        cv_rows, chosen_per_fold = cross_validated(candidates)
        rows["eo-threshold-cv"] = cv_rows
        log(f"eo-threshold-cv: threshold per fold {chosen_per_fold}")
    confident = {n: rs for n, rs in rows.items() if n.startswith("seg-vad+conf")}
    if confident:
        # vad+confident's threshold as a tuned setting, like the detector's
        rows["seg-vad+conf-cv"], chosen_per_fold = cross_validated(confident)
        log(f"seg-vad+conf-cv: setting per fold {chosen_per_fold}")
    strata = sorted({t for it in items for t in it.tags}) if whole else list(args.strata)
    groups = stratum_groups(items, strata)
    result: dict[str, Any] = {
        "spec": spec,
        "left_out": sorted(heard),
        "strata": strata,
        "engine": {
            "clustering": repr(config.offline.clustering),
            "model": analyser.model.version,
            "segmentation": analyser.segmentation.version,
        },
        "der": {},
        "overlap": {},
    }
    for name, rs in rows.items():
        summary = summarise(rs)
        result["der"][name] = {s: summary[s] for s in groups if s in summary}
        result["overlap"][name] = overlap_summary(rs, groups)
    if args.curves:
        result["curves"] = {
            net: {
                s: [
                    {"threshold": t, "precision": precision(tp, det), "recall": recall(tp, pos)}
                    for t, (tp, det, pos) in zip(THRESHOLDS, by[s], strict=True)
                ]
                for s in groups
                if s in by
            }
            for net, by in curve_counts.items()
        }
        result["threshold_der"] = {}
        for key, rs in threshold_rows.items():
            summary, ov = summarise(rs), overlap_summary(rs, groups)
            result["threshold_der"][f"t={key}"] = {
                s: {"der": summary[s]["der"]["point"], **ov[s]} for s in groups if s in summary
            }
    if args.gate and "embedding" in rows:
        result["gate"] = {}
        for name, rs in rows.items():
            if name != "embedding":
                g = suite_gate([compact_row(r) for r in rs], [compact_row(r) for r in rows["embedding"]])
                diff = pooled_difference(rs, rows["embedding"])
                result["gate"][name] = {"passed": g.passed, "reason": "; ".join(g.reasons), "pooled_difference": diff}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "all" if whole else "focus"
    (out / f"overlap-{suffix}.json").write_text(json.dumps({**result, "rows": rows}, indent=1) + "\n")
    text = markdown(result)
    (out / f"overlap-{suffix}.md").write_text(text + "\n")
    print(text)
    return 0


def check(analyser: Analyser, item: EvalItem, a: Analysis, config: EngineConfig) -> None:
    """The rebuilt hypotheses equal what the engine's diarizers output for this recording."""

    def same(x: list[Segment], y: list[Segment], what: str) -> None:
        key = lambda s: (round(s.start, 6), round(s.end, 6), s.speaker)  # noqa: E731
        assert sorted(map(key, x)) == sorted(map(key, y)), f"{item.uri}: {what} differs from the engine"

    same(embedding_segments(a), analyser.diarizer.diarize(item.audio), "embedding")
    with_detector = Diarizer(config.offline, analyser.model, analyser.ctx.vad.factory, analyser.detector)
    same(embedding_overlap(a), with_detector.diarize(item.audio), "embedding-overlap")
    seg = SegmentationDiarizer(config.segmentation.offline, analyser.model, analyser.segmentation)
    same(segmentation(a, config.segmentation.offline), seg.diarize(item.audio), "segmentation")
    vad_cfg = dataclasses.replace(config.segmentation.offline, speech="vad+confident")
    vad_seg = SegmentationDiarizer(vad_cfg, analyser.model, analyser.segmentation)
    same(segmentation(a, vad_cfg), vad_seg.diarize(item.audio), "segmentation vad+confident")
    log(f"  check {item.uri}: rebuilt hypotheses equal the engine's")


if __name__ == "__main__":
    sys.exit(main())
