"""The segmentation network's streaming blocks: the overlap detector's second speakers (for the
embedding-overlap pipeline) and the segmentation pipeline's stages (local segmentation, local
speaker embeddings, constrained online clustering, delayed aggregation, segments)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.blocks.audio import RollingAudio
from voiceflow.blocks.base import Block, FrameHop, settled
from voiceflow.blocks.clustering import SILENCE, OnlineLabels
from voiceflow.blocks.embedding import EmbedFn
from voiceflow.clustering.constrained import ConstrainedOnlineClusterer
from voiceflow.segmentation.aggregation import keep_top_speakers, overlap_add, speaker_count
from voiceflow.segmentation.local_embeddings import LocalEmbeddingConfig, embed_local_speakers
from voiceflow.segmentation.model import MIN_CHUNK_SAMPLES, SegmentationModel
from voiceflow.segmentation.offline import global_activity
from voiceflow.segmentation.overlap import OverlapConfig, second_speakers
from voiceflow.segments import Segment, speaker_label, true_runs
from voiceflow.vad import CHUNK, FRAME_SECONDS

# chunks [B, T] -> hard local activity [B, T // frame, S]; injectable so a server can batch streams.
SegmentFn = Callable[[np.ndarray], np.ndarray]


# -- embedding-overlap: the detector on the embedding pipeline's frame grid -------------------------


class SecondSpeakers(Block[FrameHop]):
    """Where the overlap detector hears two people, a decided frame also gets the nearest other
    voice (within `max_reach_seconds`) as a second speaker. A frame waits `delay_seconds` for it:
    the voice that joins an overlap usually goes on talking after it."""

    def __init__(
        self, model: SegmentationModel, config: OverlapConfig, audio: RollingAudio, labels: OnlineLabels
    ) -> None:
        self.model = model
        self.config = config
        self.audio = audio
        self.labels = labels
        self.context_samples = model.chunk_samples  # the detector's context
        self.second: list[int] = []  # second speaker per frame, SILENCE where none
        self._done = 0  # frames before this have their second speaker decided
        self._decided = 0

    def __call__(self, hop: FrameHop) -> None:
        self.second.extend([SILENCE] * (hop.end - len(self.second)))
        self._decided = hop.end
        self._assign(hop.end - round(self.config.delay_seconds / FRAME_SECONDS), hop.end)

    def close(self) -> None:
        self._assign(self._decided, self._decided)

    def mutable_from(self, decided: int) -> int:
        return min(decided, self._done)

    def live(self, lo: int) -> np.ndarray:
        return np.array(self.second[lo:], dtype=int)

    def final(self) -> np.ndarray:
        return np.array(self.second, dtype=int)

    def _assign(self, until: int, decided: int) -> None:
        """Second speakers for frames [_done, until) where the detector hears two, among the
        decided frames (up to `decided`)."""
        lo_frame, until = self._done, max(until, self._done)
        if until == lo_frame:
            return
        self._done = until
        stop = decided * CHUNK
        frame = self.model.frame_samples
        # The detector's frames sit on the stream's own 20 ms grid (as in the segmentation pipeline).
        begin = -(-max(self.audio.start, stop - self.model.chunk_samples) // frame) * frame
        chunk = self.audio.window(begin, stop)
        if chunk.size < MIN_CHUNK_SAMPLES:
            return
        counts = self.model.count(chunk[None, :])[0]
        index = (((np.arange(lo_frame, until) + 0.5) * CHUNK - begin) // frame).astype(int)
        heard = np.zeros(until - lo_frame, dtype=bool)
        inside = (index >= 0) & (index < len(counts))
        heard[inside] = counts[index[inside]] >= 2
        if not heard.any():
            return
        reach = round(self.config.max_reach_seconds / FRAME_SECONDS)
        lo = max(0, lo_frame - reach)
        labels = np.array(self.labels.labels[lo:decided], dtype=int)
        overlap = np.zeros(len(labels), dtype=bool)
        overlap[lo_frame - lo : until - lo] = heard
        second = second_speakers(labels, np.zeros((len(labels), 0)), overlap, reach)
        self.second[lo_frame:until] = second[lo_frame - lo : until - lo].tolist()


# -- the segmentation pipeline: one hop per chunk of the network ----------------------------------


@dataclass
class ChunkHop:
    """One hop of the segmentation pipeline: the network's chunk ending at the hop."""

    start: int  # stream sample where the chunk starts
    audio: np.ndarray  # [T] the chunk (5 s, shorter at the very start of the stream)
    hard: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [F, S] local activity
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [S, D] per local speaker
    valid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # [S] has an embedding
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # [S] global speaker


class LocalSegmentation(Block[ChunkHop]):
    """The network on the chunk: who of up to S local speakers talks in each of its frames."""

    def __init__(self, segment: SegmentFn) -> None:
        self.segment = segment

    def __call__(self, hop: ChunkHop) -> None:
        hop.hard = np.asarray(self.segment(hop.audio[None, :]))[0]


class LocalSpeakerEmbedding(Block[ChunkHop]):
    """One embedding per local speaker, from the audio where it talks alone; the background mean,
    when given, is taken off (what every embedding shares dominates raw cosines between speakers)."""

    def __init__(
        self, embed: EmbedFn, frame: int, config: LocalEmbeddingConfig, background_mean: np.ndarray | None
    ) -> None:
        self.embed = embed
        self.frame = frame
        self.config = config
        self.background_mean = background_mean

    def __call__(self, hop: ChunkHop) -> None:
        embeddings, valid = embed_local_speakers([hop.audio], [hop.hard], self.embed, self.frame, self.config)
        if self.background_mean is not None and valid.any():
            embeddings = embeddings - self.background_mean * valid[..., None]
        hop.embeddings, hop.valid = embeddings[0], valid[0]


class ChunkClustering(Block[ChunkHop]):
    """Local speakers -> global ones, incrementally (never two of one chunk to the same speaker;
    labels never change)."""

    def __init__(self, clusterer: ConstrainedOnlineClusterer, frame: int) -> None:
        self.clusterer = clusterer
        self.frame = frame

    def __call__(self, hop: ChunkHop) -> None:
        speech = hop.hard.sum(axis=0) * self.frame / SAMPLE_RATE
        hop.labels = (
            self.clusterer.assign(hop.embeddings, hop.valid, speech) if hop.valid.any() else np.full(len(speech), -1)
        )


@dataclass
class _ChunkOutput:
    start_frame: int
    hard: np.ndarray  # [F, S] local activity
    labels: np.ndarray  # [S] global speaker per local speaker

    @property
    def end_frame(self) -> int:
        return self.start_frame + len(self.hard)


class DelayedAggregation(Block[ChunkHop]):
    """Keeps the chunks' activity on global speakers until their frames are decided: a frame is
    decided by the offline pipeline's overlap-add + speaker-count reconstruction over the chunks
    that covered it, once it is `latency_frames` behind the newest chunk's end."""

    def __init__(self, clustering: ChunkClustering, latency_frames: int) -> None:
        self.clustering = clustering
        self.frame = clustering.frame
        self.latency_frames = latency_frames
        self.chunks: deque[_ChunkOutput] = deque()
        self.decided = 0  # frames [0, decided) are decided

    @property
    def latest_end(self) -> int:
        return self.chunks[-1].end_frame if self.chunks else self.decided

    def __call__(self, hop: ChunkHop) -> None:
        self.chunks.append(_ChunkOutput(hop.start // self.frame, hop.hard, hop.labels))

    def decide(self, closing: bool = False) -> np.ndarray | None:
        """Decide frames [decided, edge) (the edge: `latency_frames` behind the newest chunk's end,
        the end itself when closing); [frames, speakers] activity of those frames, None when
        there is nothing new to decide."""
        until = self.latest_end - (0 if closing else self.latency_frames)
        until = max(min(until, self.latest_end), self.decided)
        if until == self.decided and not closing:
            return None
        lo = self.decided
        covering = [c for c in self.chunks if c.end_frame > lo and c.start_frame < until]
        num_global = max(self.clustering.clusterer.num_speakers, 1)
        scores = overlap_add(
            [global_activity(c.hard, c.labels, num_global) for c in covering],
            [c.start_frame - lo for c in covering],
            until - lo,
        )
        count = speaker_count([c.hard for c in covering], [c.start_frame - lo for c in covering], until - lo)
        self.decided = until
        while self.chunks and self.chunks[0].end_frame <= until:
            self.chunks.popleft()
        return keep_top_speakers(scores, count)


class SpeakerRuns:
    """Decided activity -> segments. A speaker's run still open at the decided edge is a draft
    (`settled`), reported again, longer, until it closes; memory holds the open runs only."""

    def __init__(self, frame_seconds: float) -> None:
        self.seconds = frame_seconds
        self.decided = 0
        self._open: dict[int, int] = {}  # speaker -> first frame of its run still open at the decided edge
        self.closed: list[Segment] = []

    def extend(self, active: np.ndarray, closing: bool = False) -> list[Segment]:
        """Frames [decided, decided + len(active)) decided; returns the segments that changed."""
        lo, self.decided = self.decided, self.decided + len(active)
        edge = self.decided * self.seconds
        changed: list[Segment] = []
        for k in range(active.shape[1]):
            track = active[:, k]
            if k in self._open and not (track.size and track[0]):
                # The run ended exactly at the previous edge: it is final now.
                changed.append(
                    self._close(Segment(self._open.pop(k) * self.seconds, lo * self.seconds, speaker_label(k)))
                )
            for run_start, run_end in zip(*true_runs(track), strict=True):
                start = self._open.pop(k, lo + int(run_start)) if run_start == 0 else lo + int(run_start)
                end = (lo + int(run_end)) * self.seconds
                final = closing or settled(end, edge)
                seg = Segment(start * self.seconds, end, speaker_label(k), final=final)
                if final:
                    self.closed.append(seg)
                else:
                    self._open[k] = start
                changed.append(seg)
        if closing:
            for k, start in sorted(self._open.items()):
                changed.append(self._close(Segment(start * self.seconds, edge, speaker_label(k))))
            self._open.clear()
        return sorted(changed, key=lambda s: (s.start, s.end, s.speaker))

    def _close(self, seg: Segment) -> Segment:
        self.closed.append(seg)
        return seg
