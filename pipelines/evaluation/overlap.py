"""Overlapped speech scored on its own (issue 24): detection precision/recall and the parts of DER
that overlap causes, as pure functions of segments or frame arrays.

Everything is counted on a fine grid (10 ms cells, each cell takes the speakers active at its
centre) so it can be read against pyannote's collar-0 DER, which counts the same things:
where the reference has n speakers and the hypothesis m, max(0, n - m) speakers are missed and
max(0, m - n) are false alarm. Those two are split by where they happen:
- missed in overlap (n >= 2) vs missed in single-speaker speech (n == 1);
- false alarm in non-speech (n == 0) vs an extra speaker inside speech (n >= 1), which is where
  a wrongly detected overlap lands.
Overlap *detection* compares the cells where each side has two or more speakers.
Counts are seconds (or speaker-seconds), never rates, so strata pool by summing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from voiceflow.scoring import OVERLAP_RESOLUTION, speaker_counts
from voiceflow.segments import Segment


@dataclass(frozen=True)
class OverlapCounts:
    speech: float = 0.0  # reference speaker time (DER's denominator)
    ref_overlap: float = 0.0  # seconds where the reference has >= 2 speakers
    hyp_overlap: float = 0.0  # seconds where the hypothesis has >= 2 speakers
    hit_overlap: float = 0.0  # seconds where both have >= 2
    missed_overlap: float = 0.0  # speaker time missed where the reference has >= 2 speakers
    missed_single: float = 0.0  # speaker time missed where it has exactly 1
    false_alarm_silence: float = 0.0  # hypothesis speaker time where the reference has nobody
    false_alarm_speech: float = 0.0  # extra hypothesis speakers where the reference has >= 1

    def __add__(self, other: OverlapCounts) -> OverlapCounts:
        return OverlapCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> OverlapCounts:
        return cls(**{f.name: float(data[f.name]) for f in fields(cls)})


def precision(hits: float, detected: float) -> float:
    """Share of detections that are right; 1 when nothing was detected (no detection was wrong)."""
    return hits / detected if detected > 0 else 1.0


def recall(hits: float, relevant: float) -> float:
    """Share of the truth that was found; 1 when there was nothing to find."""
    return hits / relevant if relevant > 0 else 1.0


def rates(counts: OverlapCounts) -> dict[str, float]:
    """Detection precision/recall/F1 and each error part as a share of reference speech (DER points)."""
    p, r = precision(counts.hit_overlap, counts.hyp_overlap), recall(counts.hit_overlap, counts.ref_overlap)
    speech = counts.speech or 1.0
    return {
        "overlap_precision": p,
        "overlap_recall": r,
        "overlap_f1": 2 * p * r / (p + r) if p + r > 0 else 0.0,
        "missed_overlap": counts.missed_overlap / speech,
        "missed_single": counts.missed_single / speech,
        "false_alarm_silence": counts.false_alarm_silence / speech,
        "false_alarm_speech": counts.false_alarm_speech / speech,
        "overlap_share": counts.ref_overlap / speech,  # how much of the speech overlap is, roughly
    }


def scored_cells(uem: Sequence[tuple[float, float]] | None, cells: int, resolution: float) -> np.ndarray:
    """[cells] bool: cells whose centre lies in the UEM (all of them without one)."""
    if uem is None:
        return np.ones(cells, dtype=bool)
    centres = (np.arange(cells) + 0.5) * resolution
    out = np.zeros(cells, dtype=bool)
    for start, stop in uem:
        out |= (centres >= start) & (centres < stop)
    return out


def count_overlap(ref: np.ndarray, hyp: np.ndarray, cell_seconds: float) -> OverlapCounts:
    """OverlapCounts from per-cell speaker counts of reference and hypothesis (scored cells only)."""
    ref, hyp = np.asarray(ref, dtype=np.int64), np.asarray(hyp, dtype=np.int64)
    if ref.shape != hyp.shape:
        raise ValueError("one hypothesis count per reference cell")
    missed = np.maximum(ref - hyp, 0)
    extra = np.maximum(hyp - ref, 0)
    return OverlapCounts(
        speech=float(ref.sum()) * cell_seconds,
        ref_overlap=float(np.sum(ref >= 2)) * cell_seconds,
        hyp_overlap=float(np.sum(hyp >= 2)) * cell_seconds,
        hit_overlap=float(np.sum((ref >= 2) & (hyp >= 2))) * cell_seconds,
        missed_overlap=float(missed[ref >= 2].sum()) * cell_seconds,
        missed_single=float(missed[ref == 1].sum()) * cell_seconds,
        false_alarm_silence=float(extra[ref == 0].sum()) * cell_seconds,
        false_alarm_speech=float(extra[ref >= 1].sum()) * cell_seconds,
    )


def overlap_counts(
    reference: Sequence[Segment],
    hypothesis: Sequence[Segment],
    uem: Sequence[tuple[float, float]] | None = None,
    resolution: float = OVERLAP_RESOLUTION,
) -> OverlapCounts:
    """OverlapCounts of one recording from its reference and hypothesis segments."""
    end = max([s.end for s in reference] + [s.end for s in hypothesis] + [0.0])
    cells = int(np.ceil(end / resolution)) + 1
    scored = scored_cells(uem, cells, resolution)
    ref = speaker_counts(reference, cells, resolution)[scored]
    hyp = speaker_counts(hypothesis, cells, resolution)[scored]
    return count_overlap(ref, hyp, resolution)


def reference_overlap(
    reference: Sequence[Segment],
    frames: int,
    frame_seconds: float,
    uem: Sequence[tuple[float, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """([frames] bool: >= 2 reference speakers at the frame's centre, [frames] bool: scored)."""
    counts = speaker_counts(reference, frames, frame_seconds)
    return counts >= 2, scored_cells(uem, frames, frame_seconds)


def detection_curve(
    truth: np.ndarray, scores: np.ndarray, thresholds: Sequence[float]
) -> list[tuple[float, float, float]]:
    """Per threshold (true positives, detections, positives), in frames: a frame is detected where
    its score >= threshold. Sum these over recordings, then take precision and recall."""
    truth, scores = np.asarray(truth, dtype=bool), np.asarray(scores, dtype=float)
    if truth.shape != scores.shape:
        raise ValueError("one score per frame")
    positives = float(truth.sum())
    out = []
    for t in thresholds:
        detected = scores >= t
        out.append((float(np.sum(detected & truth)), float(detected.sum()), positives))
    return out
