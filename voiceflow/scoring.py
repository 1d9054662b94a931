"""Diarization error rate with pyannote.metrics (the scorer published results use).

Default convention: collar 0 and overlapped speech scored (`skip_overlap=False`); the 0.25 s
collar variant is reported beside it. Components: false alarm, missed detection, confusion;
plus, on its own, the part of the missed detection that lies in overlapped reference speech
(where a one-speaker-at-a-time pipeline must lose at least one speaker), at collar 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voiceflow.segments import Segment

OVERLAP_RESOLUTION = 0.01  # seconds per cell of the grid the missed-overlap count is taken on


@dataclass
class DERReport:
    collar: float
    total: float = 0.0
    false_alarm: float = 0.0
    missed: float = 0.0
    confusion: float = 0.0
    missed_overlap: float = 0.0  # seconds of speaker time missed where the reference has >= 2 speakers
    overlap_speech: float = 0.0  # speaker time in those regions (2 s for 1 s of two-speaker overlap)
    per_file: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def der(self) -> float:
        return (self.false_alarm + self.missed + self.confusion) / self.total if self.total > 0 else 0.0

    def component_rates(self) -> dict[str, float]:
        total = self.total or 1.0
        return {
            "der": self.der,
            "false_alarm": self.false_alarm / total,
            "missed": self.missed / total,
            "confusion": self.confusion / total,
            "missed_overlap": self.missed_overlap / total,
            "total_speech": self.total,
        }


def segments_to_annotation(segments: Iterable[Segment], uri: str) -> Any:
    """A pyannote.core Annotation: one track per segment (overlapping turns stay apart)."""
    from pyannote.core import Annotation
    from pyannote.core import Segment as PSegment

    ann = Annotation(uri=uri)
    for i, seg in enumerate(segments):
        if seg.end > seg.start:
            ann[PSegment(seg.start, seg.end), i] = seg.speaker
    return ann


_annotation = segments_to_annotation  # the name pipelines.evaluation.suite imports


def _timeline(regions: Sequence[tuple[float, float]], uri: str) -> Any:
    from pyannote.core import Segment as PSegment
    from pyannote.core import Timeline

    return Timeline([PSegment(s, e) for s, e in regions], uri=uri)


def score_der(
    references: dict[str, list[Segment]],
    hypotheses: dict[str, list[Segment]],
    uems: dict[str, list[tuple[float, float]]] | None = None,
    collar: float = 0.0,
    skip_overlap: bool = False,
) -> DERReport:
    """Score every uri of `references`; a uri missing from `hypotheses` counts as all missed."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    report = DERReport(collar=collar)
    for uri in sorted(references):
        ref = segments_to_annotation(references[uri], uri)
        hyp = segments_to_annotation(hypotheses.get(uri, []), uri)
        uem = _timeline(uems[uri], uri) if uems and uri in uems else None
        if uem is None:
            # Without a UEM pyannote approximates from the extent of ref and hyp; be explicit instead.
            extent = ref.get_timeline().extent() | hyp.get_timeline().extent() if hyp else ref.get_timeline().extent()
            uem = _timeline([(extent.start, extent.end)], uri)
        detail = metric(ref, hyp, uem=uem, detailed=True)
        fa, miss, conf, total = (
            detail["false alarm"],
            detail["missed detection"],
            detail["confusion"],
            detail["total"],
        )
        report.total += total
        report.false_alarm += fa
        report.missed += miss
        report.confusion += conf
        missed_overlap, overlap_speech = overlap_miss(
            references[uri], hypotheses.get(uri, []), uems[uri] if uems and uri in uems else None
        )
        report.missed_overlap += missed_overlap
        report.overlap_speech += overlap_speech
        report.per_file[uri] = {
            "der": (fa + miss + conf) / total if total else 0.0,
            "false_alarm": fa,
            "missed": miss,
            "confusion": conf,
            "total": total,
            "missed_overlap": missed_overlap,
            "overlap_speech": overlap_speech,
        }
    return report


def speaker_counts(segments: Iterable[Segment], cells: int, resolution: float = OVERLAP_RESOLUTION) -> np.ndarray:
    """[cells] how many distinct speakers are active in each grid cell (cell centre rule)."""
    per_speaker: dict[str, np.ndarray] = {}
    centres = (np.arange(cells) + 0.5) * resolution
    for seg in segments:
        track = per_speaker.setdefault(seg.speaker, np.zeros(cells, dtype=bool))
        track |= (centres >= seg.start) & (centres < seg.end)
    return np.sum(list(per_speaker.values()), axis=0) if per_speaker else np.zeros(cells, dtype=int)


def overlap_miss(
    reference: Sequence[Segment],
    hypothesis: Sequence[Segment],
    uem: Sequence[tuple[float, float]] | None = None,
    resolution: float = OVERLAP_RESOLUTION,
) -> tuple[float, float]:
    """(missed speaker time in overlapped reference speech, overlapped speaker time), seconds.

    Where the reference has n >= 2 speakers and the hypothesis m, max(0, n - m) speakers are
    missed: the same count pyannote's missed detection takes, restricted to overlap, so this is a
    part of the collar-0 missed detection and can be read against it.
    """
    end = max([s.end for s in reference] + [s.end for s in hypothesis] + [0.0])
    cells = int(np.ceil(end / resolution)) + 1
    ref = speaker_counts(reference, cells, resolution)
    hyp = speaker_counts(hypothesis, cells, resolution)
    scored = np.ones(cells, dtype=bool)
    if uem is not None:
        centres = (np.arange(cells) + 0.5) * resolution
        scored = np.zeros(cells, dtype=bool)
        for start, stop in uem:
            scored |= (centres >= start) & (centres < stop)
    overlap = scored & (ref >= 2)
    missed = np.maximum(ref - hyp, 0)[overlap].sum() * resolution
    return float(missed), float(ref[overlap].sum() * resolution)
