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


def true_runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of each run of True in `flags`, ends exclusive."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(flags).astype(np.int8), [0]])))
    return edges[::2], edges[1::2]


def silence_between_speakers(
    frame_labels: np.ndarray, heard: np.ndarray, reach_frames: int, first_change: int = 0
) -> np.ndarray:
    """`frame_labels` (-1 = no speech) with each speaker change inside speech moved into the nearest
    pause the VAD heard (`heard` False, with speech on both sides) within `reach_frames` of it, and
    that pause made silence.
    A change with another change or unlabelled frames between it and its pause is left alone, and
    so is every change before frame `first_change` (a live stream's, already placed)."""
    out = frame_labels.copy()
    labelled = frame_labels >= 0
    changes = np.flatnonzero(labelled[1:] & labelled[:-1] & (frame_labels[1:] != frame_labels[:-1])) + 1
    movable = changes[changes >= first_change]
    pause_starts, pause_ends = true_runs(labelled & ~heard)
    # A pause has speech on both sides: a region's padded edges are not pauses.
    inside = (pause_starts > 0) & (pause_ends < len(labelled))
    inside[inside] &= labelled[pause_starts[inside] - 1] & labelled[pause_ends[inside]]
    pause_starts, pause_ends = pause_starts[inside], pause_ends[inside]
    if reach_frames <= 0 or not len(movable) or not len(pause_starts):
        return out
    for change in movable.tolist():
        distance = np.maximum(np.maximum(pause_starts - change, change - pause_ends), 0)
        nearest = int(np.argmin(distance))
        if distance[nearest] > reach_frames:
            continue
        start, end = int(pause_starts[nearest]), int(pause_ends[nearest])
        lo, hi = min(change, start), max(change, end)
        if np.any((changes > lo) & (changes < hi) & (changes != change)) or (frame_labels[lo:hi] < 0).any():
            continue  # another change, or frames of nobody, between the change and its pause
        out[lo:start], out[start:end], out[end:hi] = frame_labels[change - 1], -1, frame_labels[change]
    return out


def bridge_own_pauses(frame_labels: np.ndarray, max_frames: int) -> np.ndarray:
    """`frame_labels` (-1 = no speech) with every silence of at most `max_frames` between two runs of
    the same speaker given to that speaker: a speaker's own short pause is speech in references."""
    out = frame_labels.copy()
    starts, ends = true_runs(frame_labels < 0)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        inside = start > 0 and end < len(frame_labels)
        if inside and end - start <= max_frames and frame_labels[start - 1] == frame_labels[end]:
            out[start:end] = frame_labels[end]
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
