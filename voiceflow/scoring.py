"""Diarization error rate with pyannote.metrics (the scorer published results use).

Default convention: collar 0 and overlapped speech scored (`skip_overlap=False`); the 0.25 s
collar variant is reported beside it. Components: false alarm, missed detection, confusion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from voiceflow.segments import Segment


@dataclass
class DERReport:
    collar: float
    total: float = 0.0
    false_alarm: float = 0.0
    missed: float = 0.0
    confusion: float = 0.0
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
            "total_speech": self.total,
        }


def _annotation(segments: Iterable[Segment], uri: str) -> Any:
    from pyannote.core import Annotation
    from pyannote.core import Segment as PSegment

    ann = Annotation(uri=uri)
    for i, seg in enumerate(segments):
        if seg.end > seg.start:
            ann[PSegment(seg.start, seg.end), i] = seg.speaker
    return ann


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
        ref = _annotation(references[uri], uri)
        hyp = _annotation(hypotheses.get(uri, []), uri)
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
        report.per_file[uri] = {
            "der": (fa + miss + conf) / total if total else 0.0,
            "false_alarm": fa,
            "missed": miss,
            "confusion": conf,
            "total": total,
        }
    return report
