"""A trained model's offset to GE2E's similarity scale, measured on meetings it never heard.

The engine's clustering settings were chosen for the bundled GE2E (voiceflow.clustering.offline).
Its last step merges two clusters whose *raw* centroids are more alike than an absolute cosine,
and a fine-tuned model can agree with GE2E on which windows go together while its raw cosines run
a little higher or lower overall: the same absolute threshold then merges two real speakers or
keeps one split. So a model carries `merge_threshold_shift`: the mean, over pairs of different
speakers in the calibration meetings, of (the model's raw-centroid cosine - GE2E's) on the same
windows, read as the engine reads each model. The engine adds it to the configured
merge threshold (voiceflow.clustering.offline.shift_merge_threshold).

Calibration meetings are AMI *train* excerpts the model was not trained on
(`data.calibration_ami_files`, which may not overlap `data.ami_files`). Never dev recordings:
that would tune the model to the gate's own test. On meetings a model was trained on, its
cosines sit where the teacher's do and the offset reads ~0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.evaluation.devsets import DevItem, load_ami_split
from pipelines.training.config import DataConfig, build_config
from voiceflow.clustering.offline import centroids_of
from voiceflow.embedding import DEFAULT_MODEL, MAX_MERGE_THRESHOLD_SHIFT, EmbeddingModel, l2_normalize
from voiceflow.pipeline import FRAME_SECONDS, Diarizer, WindowPlan, embed_plan, plan_windows

MIN_WINDOWS_PER_SPEAKER = 5  # windows a speaker needs for a centroid (~2.4 s of speech)
# A window counts for the speaker who fills 60 % of it while nobody else fills 40 %: the AMI
# excerpts overlap so much that clean one-speaker windows leave almost no speaker pairs.
FILL, OTHERS = 0.6, 0.4


@dataclass(frozen=True)
class PairCosine:
    recording: str
    speakers: tuple[str, str]
    model: float
    reference: float


@dataclass(frozen=True)
class Calibration:
    shift: float
    pairs: tuple[PairCosine, ...]
    recordings: tuple[str, ...]
    reference: str
    streams: int  # the reading it was measured on (0: one window at a time)
    segment_hop: int = 0  # samples, when the model names its segment hop (voiceflow.staggered)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "merge_threshold_shift": round(self.shift, 6),
            "calibration": {
                "what": "mean (model - reference) raw-centroid cosine of different-speaker pairs",
                "recordings": list(self.recordings),
                "reference": self.reference,
                "reading": {
                    "streams": self.streams,
                    "quantization": "none",
                    **({"segment_hop_samples": self.segment_hop} if self.segment_hop else {}),
                },
                "pairs": [asdict(p) for p in self.pairs],
            },
        }


def window_speakers(
    item: DevItem, plan: WindowPlan, window_seconds: float, fill: float = 0.8, others: float = 0.1
) -> np.ndarray:
    """The reference speaker filling each window (>= `fill` of it, any other <= `others`), -1 otherwise.

    Indices follow the sorted speaker names of the item's reference. The defaults pick clean
    one-speaker windows (for EERs); calibration takes the majority speaker (FILL/OTHERS), as a
    cluster centroid also averages windows another voice runs into."""
    speakers = sorted({s.speaker for s in item.reference})
    out = []
    for start in plan.starts:
        t0 = start * FRAME_SECONDS
        t1 = t0 + window_seconds
        cover = dict.fromkeys(speakers, 0.0)
        for seg in item.reference:
            cover[seg.speaker] += max(0.0, min(t1, seg.end) - max(t0, seg.start))
        ranked = sorted(cover.items(), key=lambda kv: -kv[1])
        alone = ranked[0][1] >= fill * window_seconds and (len(ranked) < 2 or ranked[1][1] <= others * window_seconds)
        out.append(speakers.index(ranked[0][0]) if alone else -1)
    return np.array(out, dtype=int)


def speaker_pair_cosines(
    embeddings: np.ndarray, labels: np.ndarray, min_windows: int = MIN_WINDOWS_PER_SPEAKER
) -> dict[tuple[int, int], float]:
    """Raw-centroid cosine of every pair of labelled speakers (label >= 0) with enough windows."""
    if len(embeddings) != len(labels):
        raise ValueError(f"{len(embeddings)} embeddings but {len(labels)} labels")
    raw = l2_normalize(np.asarray(embeddings, dtype=np.float64))
    counted = [int(i) for i in np.unique(labels) if i >= 0 and np.sum(labels == i) >= min_windows]
    keep = np.isin(labels, counted)
    if not keep.any():
        return {}
    ids, cents = centroids_of(raw[keep], labels[keep])  # the clustering's own centroids
    sims = cents @ cents.T
    return {(int(ids[a]), int(ids[b])): float(sims[a, b]) for a in range(len(ids)) for b in range(a + 1, len(ids))}


def mean_shift(pairs: Sequence[PairCosine]) -> float:
    """The model's offset to the reference's scale; refuses what cannot be a calibration."""
    if not pairs:
        raise ValueError(
            f"calibration needs at least one pair of speakers with {MIN_WINDOWS_PER_SPEAKER}+ windows of their own"
        )
    shift = float(np.mean([p.model - p.reference for p in pairs]))
    if not math.isfinite(shift) or abs(shift) > MAX_MERGE_THRESHOLD_SHIFT:
        raise ValueError(
            f"calibration offset {shift:+.3f} is outside +-{MAX_MERGE_THRESHOLD_SHIFT}: "
            "not GE2E's scale shifted but another scale"
        )
    return shift


def calibration_meetings(training_config: dict[str, Any]) -> list[DevItem]:
    """The AMI train excerpts a checkpoint's training config set aside for calibration."""
    data = build_config(DataConfig, dict(training_config.get("data", {})), "data")
    names = list(data.calibration_ami_files)
    return load_ami_split("train", data.root(), names, data.ami) if names else []


def calibrate(model: EmbeddingModel, items: Sequence[DevItem], reference: EmbeddingModel | None = None) -> Calibration:
    """Measure `model`'s merge-threshold shift on `items` against GE2E (or `reference`)."""
    reference = reference or EmbeddingModel.load(DEFAULT_MODEL)
    diarizer = Diarizer(embedding_model=reference)
    window = diarizer.config.window_seconds
    pairs: list[PairCosine] = []
    for item in items:
        plan = plan_windows(diarizer.speech(item.audio).mask, diarizer.config)
        labels = window_speakers(item, plan, window, FILL, OTHERS)
        if len(plan.starts) == 0:
            continue
        ours = speaker_pair_cosines(embed_plan(model, item.audio, plan), labels)
        theirs = speaker_pair_cosines(embed_plan(reference, item.audio, plan), labels)
        names = sorted({s.speaker for s in item.reference})
        pairs += [PairCosine(item.uri, (names[a], names[b]), ours[a, b], theirs[a, b]) for a, b in sorted(ours)]
    recordings = tuple(i.uri for i in items)
    return Calibration(mean_shift(pairs), tuple(pairs), recordings, reference.version, model.streams, model.segment_hop)


def calibrate_checkpoint(checkpoint: Path) -> Calibration | None:
    """Calibrate a trained model.pt as it exports by default; None when its config set no meetings aside."""
    import tempfile

    from pipelines.export.checkpoint import export_checkpoint, load_checkpoint

    meetings = calibration_meetings(load_checkpoint(checkpoint).get("config", {}))
    if not meetings:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_checkpoint(checkpoint, Path(tmp) / "model.onnx", calibrate=False, background=False)
        return calibrate(EmbeddingModel.load(exported.path), meetings)
