"""RTTM and UEM: the standard diarization file formats (NIST RT-09 layout)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from voiceflow.segments import Segment


class RTTMError(ValueError):
    pass


def segments_to_rttm(segments: Iterable[Segment], uri: str) -> str:
    uri = sanitize_uri(uri)
    lines = [
        f"SPEAKER {uri} 1 {seg.start:.3f} {seg.duration:.3f} <NA> <NA> {seg.speaker} <NA> <NA>"
        for seg in sorted(segments, key=lambda s: (s.start, s.end, s.speaker))
        if seg.duration > 0
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def sanitize_uri(uri: str) -> str:
    """RTTM fields are whitespace-separated: a uri must not contain whitespace."""
    cleaned = "_".join(uri.split())
    return cleaned or "audio"


def parse_rttm(text: str, source: str = "<rttm>") -> dict[str, list[Segment]]:
    result: dict[str, list[Segment]] = defaultdict(list)
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] != "SPEAKER":
            continue  # other RTTM record types carry no speaker turns
        if len(fields) < 8:
            raise RTTMError(f"{source}:{number}: expected at least 8 fields, got {len(fields)}")
        try:
            start, duration = float(fields[3]), float(fields[4])
        except ValueError as exc:
            raise RTTMError(f"{source}:{number}: onset/duration are not numbers") from exc
        if not (math.isfinite(start) and math.isfinite(duration)) or start < 0 or duration < 0:
            raise RTTMError(f"{source}:{number}: onset/duration must be finite and >= 0")
        result[fields[1]].append(Segment(start, start + duration, fields[7]))
    return dict(result)


def read_rttm(path: str | Path) -> dict[str, list[Segment]]:
    return parse_rttm(Path(path).read_text(encoding="utf-8"), str(path))


def write_rttm(path: str | Path, segments: Iterable[Segment], uri: str) -> None:
    Path(path).write_text(segments_to_rttm(segments, uri), encoding="utf-8")


def read_uem(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    result: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 4:
            raise RTTMError(f"{path}:{number}: UEM lines have 4 fields")
        result[fields[0]].append((float(fields[2]), float(fields[3])))
    return dict(result)
