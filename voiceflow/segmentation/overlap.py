"""An overlap detector for the embedding pipeline (issue 9's fallback).

The detector is either the segmentation network itself (its speaker count) or the same network
retrained to count speakers (0 / 1 / 2+, `voiceflow train --preset segmentation-overlap`).

Where the network's speaker count (overlap-added over sliding chunks, as in the segmentation
pipeline) says two people talk at once, the embedding pipeline's one-speaker-per-frame answer
gains a second speaker: the runner-up of the frame's window votes when it has any (overlap sits
mostly at turn changes, where two speakers' windows both cover the frame), else the nearest
other speaker in time. Only who is the second speaker comes from the embeddings; *that* there is
one comes from the network, which never has to agree with the clustering on identities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.segmentation.aggregation import overlap_add, speaker_count
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segmentation.offline import resample_mask, sliding_activity

NO_SPEAKER = -1
SECOND_SPEAKER_RULES = ("votes", "nearest")


@dataclass(frozen=True)
class OverlapConfig:
    step_seconds: float = 1.0  # chunk hop of the detector (coarser than the segmentation pipeline's: cheaper)
    max_reach_seconds: float = 2.0  # how far in time a second speaker may be looked for
    # Streams only: how long a frame waits for its second speaker. The voice that joins an
    # overlap usually goes on talking after it, so a little of the future names it.
    delay_seconds: float = 1.5
    # None: a frame is overlap where the chunks' argmax speaker counts average to 2 or more
    # (rounded); a number: where the network's P(two or more talk), averaged over chunks, reaches it.
    threshold: float | None = None
    # Who the second speaker is: "votes" (the runner-up of the frame's window votes, else the
    # nearest other speaker in time) or "nearest" (the nearest other speaker in time only).
    second_speaker: str = "votes"

    def __post_init__(self) -> None:
        if not 0.02 <= self.step_seconds <= 5.0 or self.max_reach_seconds < 0 or self.delay_seconds < 0:
            raise ValueError("step_seconds must be within 0.02..5; max_reach_seconds and delay_seconds >= 0")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be a probability in (0, 1), or None for the count vote")
        if self.second_speaker not in SECOND_SPEAKER_RULES:
            raise ValueError(f"second_speaker must be one of {', '.join(SECOND_SPEAKER_RULES)}")


def overlap_frames(
    audio: np.ndarray, segmentation: SegmentationModel, frames: int, frame_seconds: float, config: OverlapConfig
) -> np.ndarray:
    """[frames] bool: where the network counts two or more speakers, on a grid of `frame_seconds`."""
    scores = overlap_scores(audio, segmentation, config.step_seconds)
    if scores is None:
        return np.zeros(frames, dtype=bool)
    count, probability = scores
    overlapped = overlap_decision(count, probability, config.threshold)
    return resample_mask(overlapped, segmentation.frame_samples / SAMPLE_RATE, frames, frame_seconds)


def overlap_scores(
    audio: np.ndarray, segmentation: SegmentationModel, step_seconds: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """([F] speaker count by the chunks' vote, [F] P(two or more talk) averaged over chunks) on the
    network's frames; None when the audio is too short for the network."""
    # Per chunk and frame: (count, P(2+)) as [C, F, 2], so one overlap-add averages both.
    sliding = sliding_activity(
        audio, segmentation, step_seconds, run=lambda c: np.stack(segmentation.count_and_overlap(c), axis=-1)
    )
    if sliding is None:
        return None
    starts, values = sliding
    frame = segmentation.frame_samples
    total = len(audio) // frame
    count = speaker_count([v[:, :1] for v in values], list(starts // frame), total)
    probability = overlap_add([v[:, 1:] for v in values], list(starts // frame), total)[:, 0]
    return count, probability


def overlap_decision(count: np.ndarray, probability: np.ndarray, threshold: float | None) -> np.ndarray:
    """[F] bool overlap: the count vote (threshold None) or P(2+) >= threshold."""
    return count >= 2 if threshold is None else probability >= threshold


def second_speakers(
    labels: np.ndarray, votes: np.ndarray, overlap: np.ndarray, max_reach: int, rule: str = "votes"
) -> np.ndarray:
    """[N] second speaker per frame (NO_SPEAKER where none): only on overlapped speech frames.

    labels: [N] primary speaker (-1 = no speech); votes: [N, K] window votes per speaker (ignored
    by rule "nearest").
    """
    if rule not in SECOND_SPEAKER_RULES:
        raise ValueError(f"unknown second-speaker rule {rule!r}")
    use_votes = rule == "votes" and votes.shape[1] > 0
    out = np.full(len(labels), NO_SPEAKER, dtype=int)
    for i in np.flatnonzero(overlap & (labels >= 0)):
        ranked = np.argsort(-votes[i], kind="stable") if use_votes else np.zeros(0, dtype=int)
        runner_up = [int(k) for k in ranked if k != labels[i] and votes[i, k] > 0]
        if runner_up:
            out[i] = runner_up[0]
            continue
        lo, hi = max(0, int(i) - max_reach), min(len(labels), int(i) + max_reach + 1)
        others = lo + np.flatnonzero((labels[lo:hi] >= 0) & (labels[lo:hi] != labels[i]))
        if others.size:
            out[i] = labels[others[np.argmin(np.abs(others - i))]]
    return out
