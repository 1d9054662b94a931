"""A segmentation "network" that answers from a reference: the pipelines' accuracy apart from the network's.

With the reference's own local speakers in place of the trained network, what is left of the
DER is what local-speaker embeddings, constrained clustering and reconstruction lose — the
ceiling a better network could reach (research/scripts/oracle_segmentation.py, and the tests).
"""

from __future__ import annotations

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.powerset import MAX_SIMULTANEOUS, MAX_SPEAKERS
from voiceflow.segmentation.model import FRAME_SAMPLES, ChunkActivity
from voiceflow.segments import Segment


class OracleSegmentation:
    """Answers `activity(chunks)` with the reference's local speakers (<= 3, <= 2 at once) and
    `count(chunks)` with their number; chunks must start on the 20 ms grid of `audio`."""

    frame_samples = FRAME_SAMPLES
    chunk_samples = 5 * SAMPLE_RATE
    version = "oracle"

    def __init__(self, audio: np.ndarray, reference: list[Segment]) -> None:
        frame = FRAME_SAMPLES
        # Both pipelines start chunks on frame boundaries: the first frame's bytes locate a chunk.
        self.where = {audio[p : p + frame].tobytes(): p for p in range(0, len(audio) - frame + 1, frame)}
        speakers = sorted({s.speaker for s in reference})
        centres = (np.arange(len(audio) // frame) + 0.5) * frame / SAMPLE_RATE
        self.tracks = np.zeros((len(centres), len(speakers)), dtype=np.uint8)
        for seg in reference:
            self.tracks[(centres >= seg.start) & (centres < seg.end), speakers.index(seg.speaker)] = 1

    def activity(self, chunks: np.ndarray) -> ChunkActivity:
        hard = np.zeros((len(chunks), chunks.shape[1] // FRAME_SAMPLES, MAX_SPEAKERS), dtype=np.uint8)
        for i, chunk in enumerate(chunks):
            first = self.where[chunk[:FRAME_SAMPLES].tobytes()] // FRAME_SAMPLES
            tracks = self.tracks[first : first + hard.shape[1]]
            # Local speakers numbered by first appearance in the chunk, as the network's are trained.
            firsts = np.array([np.argmax(t) if t.any() else len(t) for t in tracks.T])
            order = [int(k) for k in np.argsort(firsts, kind="stable") if tracks[:, k].any()]
            for local, k in enumerate(order[:MAX_SPEAKERS]):
                hard[i, : len(tracks), local] = tracks[:, k]
            too_many = hard[i].sum(axis=1) > MAX_SIMULTANEOUS
            hard[i, too_many, MAX_SPEAKERS - 1] = 0
        return ChunkActivity(hard, hard.astype(np.float32))

    def count(self, chunks: np.ndarray) -> np.ndarray:
        return self.activity(chunks).hard.sum(axis=-1).astype(np.int64)

    def count_and_overlap(self, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = self.count(chunks)
        return count, (count >= 2).astype(np.float32)  # the reference is certain
