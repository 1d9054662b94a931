"""Reading a per-frame embedding model in K staggered streams instead of once per window.

The offline pipeline embeds 1.6 s windows every 0.2 s, so a window model reads every frame eight
times. A model exported with a per-frame output (`voiceflow export --streams K`) is instead run
over segments of R = W K / (K - 1) samples starting every R / K (K streams, each reset every R,
staggered by R / K), and each window is read off the frame at its end in the latest segment that
starts at least W before that end. A window then sees less than W / (K - 1) of audio before it,
every frame is read K times, and the front end runs once per segment. A model may instead name its
segment hop H directly (`segment_hop_samples`): segments of W + H every H, each frame read
(W + H) / H times with less than H of history, which places a layout between two stream counts
(H = 0.6 s: 3.67 reads, between 3 and 4 streams). The model must have been
trained for that reading (`student.streams` in `voiceflow train`, pipelines.training.staggered);
docs/pipelines.md has the numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FramesFn = Callable[[np.ndarray], np.ndarray]  # [B, samples] -> [B, frames, D], as the model outputs them


def segment_layout(window: int, streams: int, hop: int = 0) -> tuple[int, int]:
    """(segment length, segment hop) in samples over windows of `window` samples.

    The hop is `hop` when it is given (> 0), otherwise that of K = `streams`: W / (K - 1)."""
    if streams < 2:
        raise ValueError(f"staggered reading needs at least 2 streams, not {streams}")
    if window < 1:
        raise ValueError(f"window must be a positive number of samples, not {window}")
    if not 0 <= hop <= window:
        raise ValueError(f"segment hop must be 0 (from the streams) or 1..{window} samples, not {hop}")
    hop = hop or max(1, round(window / (streams - 1)))
    return window + hop, hop


def serving_starts(window_ends: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Start of the segment each window is read from: the latest grid point >= `window` before its end."""
    earliest = np.maximum(np.asarray(window_ends, dtype=np.int64) - window, 0)
    return (earliest // hop) * hop


def frame_index(ends_in_segment: np.ndarray, frame_hop: int, n_frames: int) -> np.ndarray:
    """The per-frame output that a window ending `ends_in_segment` samples into a segment is read off.

    One rule for the engine and for training (pipelines.training.staggered), so a model is read
    exactly where it was taught to answer.
    """
    return np.minimum(np.asarray(ends_in_segment, dtype=np.int64) // frame_hop, n_frames - 1)


def read_staggered(
    frames_of: FramesFn,
    audio: np.ndarray,
    window_ends: np.ndarray,
    window: int,
    streams: int,
    frame_hop: int,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    segment_hop: int = 0,
) -> np.ndarray:
    """One embedding per window end (samples into `audio`), read off staggered segments laid out
    by `segment_layout(window, streams, segment_hop)`.

    Segments are run in batches of equal length (only the last few of a file are shorter), and
    only segments that serve a window are run, so VAD-gated windows skip silence here too.
    """
    ends = np.asarray(window_ends, dtype=np.int64)
    if len(ends) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    if ends.min() < 1 or ends.max() > len(audio):
        raise ValueError("window ends must lie inside the audio")
    length, hop = segment_layout(window, streams, segment_hop)
    starts = serving_starts(ends, window, hop)
    # Windows grouped by their segment in one sort (not a scan of all windows per segment).
    by_start = np.argsort(starts, kind="stable")
    segments, first, count = np.unique(starts[by_start], return_index=True, return_counts=True)
    served = {int(s): by_start[f : f + c] for s, f, c in zip(segments, first, count, strict=True)}
    lengths = np.minimum(length, len(audio) - segments)
    out: np.ndarray | None = None
    done = 0
    for size in np.unique(lengths):
        group = segments[lengths == size]
        for i in range(0, len(group), batch_size):
            chunk = group[i : i + batch_size]
            frames = frames_of(np.stack([audio[s : s + size] for s in chunk]).astype(np.float32))
            if out is None:
                out = np.zeros((len(ends), frames.shape[-1]), dtype=np.float32)
            for row, start in enumerate(chunk):
                mine = served[int(start)]
                out[mine] = frames[row, frame_index(ends[mine] - start, frame_hop, frames.shape[1])]
                done += len(mine)
            if progress is not None:
                progress(done, len(ends))
    assert out is not None
    return out
