"""From overlapping chunk outputs to one overlap-aware activity track per global speaker.

Shared by the offline and the streaming pipelines, so both reconstruct frames the same way
(pyannote 3.x style):
1. each chunk's local activity, mapped to global speakers, is averaged over every chunk that
   covers a frame, weighted by a Hann taper (a chunk knows its centre best: its edges lack
   context on one side);
2. the number of simultaneous speakers per frame is the same weighted average of each chunk's
   local speaker count, rounded;
3. each frame keeps that many speakers, the highest-scoring first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from voiceflow.segments import Segment, speaker_label
from voiceflow.vad import fill_short_runs, speech_regions


def chunk_taper(frames: int) -> np.ndarray:
    """[frames] Hann weights that never reach zero (a frame only one chunk covers still counts)."""
    return np.hanning(frames + 2)[1:-1].astype(np.float64)


def overlap_add(values: Sequence[np.ndarray], starts: Sequence[int], total_frames: int) -> np.ndarray:
    """Weighted average [total_frames, K] of chunk values [F_c, K] placed at frame `starts` (may be < 0).

    Frames no chunk covers are 0. Chunks may be of different lengths (the stream's first ones).
    """
    width = values[0].shape[1] if len(values) else 0
    acc = np.zeros((total_frames, width), dtype=np.float64)
    weight = np.zeros(total_frames, dtype=np.float64)
    for value, start in zip(values, starts, strict=True):
        # A chunk may start before frame 0 (a stream decides from the middle of its chunks).
        lo, hi = max(start, 0), min(start + len(value), total_frames)
        if hi <= lo:
            continue
        taper = chunk_taper(len(value))[lo - start : hi - start]
        acc[lo:hi] += value[lo - start : hi - start] * taper[:, None]
        weight[lo:hi] += taper
    covered = weight > 0
    acc[covered] /= weight[covered, None]
    return acc


def speaker_count(hard: Sequence[np.ndarray], starts: Sequence[int], total_frames: int) -> np.ndarray:
    """[total_frames] int: how many speakers talk in each frame, by the chunks' weighted vote."""
    counts = [h.sum(axis=1, keepdims=True).astype(np.float64) for h in hard]
    return np.rint(overlap_add(counts, starts, total_frames)[:, 0]).astype(int) if counts else np.zeros(0, int)


def keep_top_speakers(scores: np.ndarray, count: np.ndarray) -> np.ndarray:
    """[N, K] bool: in each frame the `count` highest-scoring speakers among those scoring > 0."""
    out = np.zeros(scores.shape, dtype=bool)
    if scores.size == 0:
        return out
    order = np.argsort(-scores, axis=1, kind="stable")
    for rank in range(scores.shape[1]):
        rows = np.flatnonzero(count > rank)
        picked = order[rows, rank]
        positive = scores[rows, picked] > 0
        out[rows[positive], picked[positive]] = True
    return out


def smooth_tracks(active: np.ndarray, min_on_frames: int, min_off_frames: int) -> np.ndarray:
    """Per speaker: close pauses up to `min_off_frames`, then drop blips up to `min_on_frames`."""
    out = active.copy()
    for k in range(active.shape[1]):
        track = fill_short_runs(active[:, k], value=False, max_frames=min_off_frames)
        out[:, k] = fill_short_runs(track, value=True, max_frames=min_on_frames)
    return out


def tracks_to_segments(
    active: np.ndarray, frame_seconds: float, offset_frames: int = 0, final: bool = True
) -> list[Segment]:
    """Per-speaker runs of [N, K] activity -> segments sorted by start (they may overlap)."""
    segments = [
        Segment(
            float((offset_frames * frame_seconds) + start),
            float((offset_frames * frame_seconds) + end),
            speaker_label(k),
            final,
        )
        for k in range(active.shape[1])
        for start, end in speech_regions(active[:, k], frame_seconds)
    ]
    return sorted(segments, key=lambda s: (s.start, s.end, s.speaker))
