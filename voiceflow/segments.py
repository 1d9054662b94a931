"""The unit of diarization output: a speaker turn on the audio's own clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    speaker: str
    final: bool = True

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["start"] = round(self.start, 3)
        data["end"] = round(self.end, 3)
        return data


def frames_to_segments(
    labels: Sequence[int] | np.ndarray,
    frame_step: float,
    speaker_names: Sequence[str] | None = None,
    offset: float = 0.0,
    final: bool = True,
    first_frame: int = 0,
) -> list[Segment]:
    """Runs of equal non-negative frame labels -> segments (label -1 means no speech).

    `labels[0]` is frame `first_frame` of the stream: times are computed from whole frame indices,
    so a run gets bit-identical times whether it is converted from a stream's tail or all of it."""
    out: list[Segment] = []
    arr = np.asarray(labels)
    if arr.size == 0:
        return out
    change = np.flatnonzero(np.diff(arr)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [arr.size]])
    for s, e in zip(starts, ends, strict=True):
        label = int(arr[s])
        if label < 0:
            continue
        name = speaker_names[label] if speaker_names is not None else speaker_label(label)
        start, end = offset + (first_frame + s) * frame_step, offset + (first_frame + e) * frame_step
        out.append(Segment(start, end, name, final))
    return out


def speaker_label(index: int) -> str:
    return f"SPEAKER_{index:02d}"


def merge_per_speaker(segments: Iterable[Segment], max_gap: float = 0.0) -> list[Segment]:
    """`merge_adjacent` speaker by speaker: where speakers overlap, one speaker's touching pieces
    are not neighbours in time order, so merging in that order alone would leave them apart."""
    by_speaker: dict[str, list[Segment]] = {}
    for seg in segments:
        by_speaker.setdefault(seg.speaker, []).append(seg)
    merged = [m for speaker_segments in by_speaker.values() for m in merge_adjacent(speaker_segments, max_gap)]
    return sorted(merged, key=lambda s: (s.start, s.end, s.speaker))


def merge_adjacent(segments: Iterable[Segment], max_gap: float = 0.0) -> list[Segment]:
    """Join same-speaker segments separated by at most `max_gap` seconds (input sorted by start)."""
    merged: list[Segment] = []
    for seg in sorted(segments, key=lambda s: (s.start, s.end)):
        last = merged[-1] if merged else None
        if last is not None and last.speaker == seg.speaker and seg.start - last.end <= max_gap:
            merged[-1] = Segment(last.start, max(last.end, seg.end), last.speaker, last.final and seg.final)
        else:
            merged.append(seg)
    return merged
