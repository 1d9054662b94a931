"""Run named systems over the suite's recordings and score every recording on its own.

A result row per (system, recording) holds raw counts, not rates: DER errors and reference speech
at collar 0 and 0.25 (pyannote.metrics, overlap scored), JER's speaker error and speaker count,
and the reference and hypothesis speaker counts. Strata, pooled figures and intervals are all
computed from those counts afterwards (`report.py`), so nothing is averaged twice.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.evaluation.devsets import DevItem, at_phases, naive_embeddings, naive_labels, naive_segments
from pipelines.evaluation.suite.features import CachedEmbeddingModel, CachedVAD, digest
from pipelines.evaluation.suite.folds import assign_folds, cross_validate, pooled_loss
from pipelines.evaluation.suite.render import SuiteRecording
from pipelines.evaluation.suite.systems import ENGINE, NAIVE_ORACLE, NAIVE_TUNED, SystemSpec
from voiceflow.segments import Segment

FOLDS = 4
FOLD_SEED = 0
AMI_TAG = "source:ami"
SIM_TAG = "source:sim"
# The naive threshold's candidates (cosine distance, uncentred GE2E-like embeddings).
NAIVE_THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.20, 1.21, 0.05))
OFFLINE, STREAMING = "offline", "streaming"


@dataclass
class EvalItem:
    uri: str  # unique per copy (an AMI excerpt read at a shifted window phase is its own copy)
    recording: str  # what the bootstrap resamples: copies of one recording stay together
    audio: np.ndarray
    reference: list[Segment]
    uem: list[tuple[float, float]]
    tags: tuple[str, ...]
    fold: int

    @property
    def num_speakers(self) -> int:
        return len({s.speaker for s in self.reference})


def build_items(
    recordings: Sequence[SuiteRecording],
    ami: Sequence[DevItem],
    folds: int = FOLDS,
    seed: int = FOLD_SEED,
    ami_phases: int = 1,
    step_seconds: float = 0.2,
) -> list[EvalItem]:
    """The evaluation pool: simulated recordings (tagged by their strata) and the AMI excerpts
    (tagged source:ami, read at `ami_phases` window-grid phases), each with its CV fold. Folds are
    dealt within each speaker stratum and within AMI, so every fold sees every kind."""
    groups: dict[str, list[str]] = {}
    for r in recordings:
        groups.setdefault(f"sim/{r.spec.speaker_stratum}", []).append(r.spec.uri)
    groups["ami"] = [f"ami-{it.uri}" for it in ami]
    fold_of = assign_folds(groups, folds, seed)
    items = [
        EvalItem(r.spec.uri, r.spec.uri, r.audio, r.reference, r.uem, (SIM_TAG, *r.spec.tags), fold_of[r.spec.uri])
        for r in recordings
    ]
    for it in ami:
        base = f"ami-{it.uri}"
        for copy in at_phases([it], ami_phases, step_seconds):
            uri = f"ami-{copy.uri}"
            items.append(EvalItem(uri, base, copy.audio, copy.reference, copy.uem, (AMI_TAG,), fold_of[base]))
    return items


def score_recording(
    reference: list[Segment], hypothesis: list[Segment], uem: list[tuple[float, float]]
) -> dict[str, Any]:
    """Raw counts for one recording (seconds): DER at collar 0 and 0.25, JER, speaker counts."""
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    from voiceflow.scoring import _annotation, _timeline

    ref, hyp, timeline = _annotation(reference, "r"), _annotation(hypothesis, "r"), _timeline(uem, "r")
    row: dict[str, Any] = {}
    for key, collar in (("der", 0.0), ("der_collar_0.25", 0.25)):
        d = DiarizationErrorRate(collar=collar, skip_overlap=False)(ref, hyp, uem=timeline, detailed=True)
        row[key] = {
            "errors": d["false alarm"] + d["missed detection"] + d["confusion"],
            "total": d["total"],
            "false_alarm": d["false alarm"],
            "missed": d["missed detection"],
            "confusion": d["confusion"],
        }
    j = JaccardErrorRate()(ref, hyp, uem=timeline, detailed=True)
    row["jer"] = {"errors": j["speaker error"], "total": j["speaker count"]}
    row["ref_speakers"] = len({s.speaker for s in reference})
    row["hyp_speakers"] = len({s.speaker for s in hypothesis})
    return row


def der_only(
    reference: list[Segment], hypothesis: list[Segment], uem: list[tuple[float, float]]
) -> tuple[float, float]:
    from pyannote.metrics.diarization import DiarizationErrorRate

    from voiceflow.scoring import _annotation, _timeline

    d = DiarizationErrorRate(collar=0.0, skip_overlap=False)(
        _annotation(reference, "r"), _annotation(hypothesis, "r"), uem=_timeline(uem, "r"), detailed=True
    )
    return d["false alarm"] + d["missed detection"] + d["confusion"], d["total"]


class Context:
    """What every system run shares: the cache folder and each embedding model, loaded once."""

    def __init__(self, cache: Path, default_model: str | None = None, log: Callable[[str], None] | None = None):
        self.cache = Path(cache)
        self.vad = CachedVAD(self.cache)
        self.default_model = default_model
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._models: dict[str, CachedEmbeddingModel] = {}
        # once per run: the code this process imported, not whatever the files say an hour later
        # (another edit mid-run must not make each system miss the cache the previous one filled)
        self.code = engine_code_digest()

    def model(self, path: str | None) -> CachedEmbeddingModel:
        from voiceflow.embedding import EmbeddingModel

        key = path or self.default_model or ""
        if key not in self._models:
            self._models[key] = CachedEmbeddingModel.wrap(EmbeddingModel.load(key or None), self.cache)
        return self._models[key]


DiarizeItem = Callable[[EvalItem], list[Segment]]


def _engine_diarizer(system: SystemSpec, mode: str, ctx: Context) -> tuple[DiarizeItem, str]:
    from voiceflow.pipeline import Diarizer
    from voiceflow.registry import pipeline_spec
    from voiceflow.selection import load_segmentation_model, make_offline_diarizer, stream_audio

    config = system.engine_config()
    model = ctx.model(system.model)
    network = load_segmentation_model(config)
    # a streaming session reads only its own settings: systems that differ offline only (another
    # clustering algorithm) share one streaming run instead of repeating it
    settings = (
        repr((config.pipeline, config.streaming, config.segmentation.streaming)) if mode == STREAMING else repr(config)
    )
    key = digest(model.bundle_digest, settings, mode, network.sha256 if network is not None else "", ctx.code)
    if mode == STREAMING:
        return (lambda it: stream_audio(it.audio, model, config, network)), key
    if pipeline_spec(config.pipeline).network_frontend:
        offline = make_offline_diarizer(config, model, network)
        return (lambda it: offline.diarize(it.audio)), key
    diarizer = Diarizer(config.offline, model, vad_factory=ctx.vad.factory, overlap_model=network)
    return (lambda it: diarizer.diarize(it.audio)), key


def engine_code_digest() -> str:
    """The engine's source: a cached hypothesis is stale once any of it changes, config or not."""
    import voiceflow

    root = Path(voiceflow.__file__).parent
    return digest(*(p.read_bytes() for p in sorted(root.rglob("*.py"))))


def _hyp_cache(ctx: Context, key: str, item: EvalItem) -> Path:
    # the audio's digest too: a suite whose generator changed may render other audio under a uri
    return ctx.cache / "hyps" / key / f"{item.uri}-{digest(item.audio)[:16]}.json"


def _cached_hyp(path: Path, compute: Callable[[], list[Segment]]) -> list[Segment]:
    if path.is_file():
        return [Segment(a, b, s) for a, b, s in json.loads(path.read_text())]
    hyp = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([[s.start, s.end, s.speaker] for s in hyp]))
    return hyp


def _row(item: EvalItem, hyp: list[Segment], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    row = {"uri": item.uri, "recording": item.recording, "tags": list(item.tags), "fold": item.fold}
    row.update(score_recording(item.reference, hyp, item.uem))
    return dict(row, **(extra or {}))


def run_engine(system: SystemSpec, items: Sequence[EvalItem], mode: str, ctx: Context) -> list[dict[str, Any]]:
    diarize, key = _engine_diarizer(system, mode, ctx)
    rows = []
    for i, item in enumerate(items):
        hyp = _cached_hyp(_hyp_cache(ctx, key, item), lambda item=item: diarize(item))  # type: ignore[misc]
        rows.append(_row(item, hyp))
        if (i + 1) % 20 == 0 or i + 1 == len(items):
            ctx.log(f"  {system.name} {mode}: {i + 1}/{len(items)}")
    return rows


def run_naive(system: SystemSpec, items: Sequence[EvalItem], ctx: Context) -> list[dict[str, Any]]:
    """naive-oracle: the true count. naive-tuned: the threshold chosen per fold on the other folds."""
    model = ctx.model(system.model)
    features = {}
    for i, item in enumerate(items):
        features[item.uri] = naive_embeddings(model, item.audio, ctx.vad.factory)
        if (i + 1) % 40 == 0 or i + 1 == len(items):
            ctx.log(f"  naive features: {i + 1}/{len(items)}")

    def segments(item: EvalItem, threshold: float | None) -> list[Segment]:
        mask, plan, emb = features[item.uri]
        labels = naive_labels(emb, item.num_speakers if threshold is None else None, threshold)
        return naive_segments(mask, plan, labels)

    if system.kind == NAIVE_ORACLE:
        return [_row(it, segments(it, None)) for it in items]
    # every threshold's DER counts per item, once; then each fold picks on the others' pooled DER
    counts = {t: {it.uri: der_only(it.reference, segments(it, t), it.uem) for it in items} for t in NAIVE_THRESHOLDS}

    def count(threshold: float, uri: str) -> tuple[float, float]:
        return counts[threshold][uri]

    fold_of, loss = pooled_loss(items, count)
    chosen = cross_validate(fold_of, list(NAIVE_THRESHOLDS), loss)
    ctx.log(f"  naive-tuned thresholds per fold: {chosen}")
    return [_row(it, segments(it, chosen[it.fold]), {"threshold": chosen[it.fold]}) for it in items]


def run_system(system: SystemSpec, items: Sequence[EvalItem], mode: str, ctx: Context) -> list[dict[str, Any]]:
    if system.kind == ENGINE:
        return run_engine(system, items, mode, ctx)
    if system.kind in (NAIVE_ORACLE, NAIVE_TUNED):
        return run_naive(system, items, ctx)
    raise ValueError(f"unknown system kind {system.kind!r}")
