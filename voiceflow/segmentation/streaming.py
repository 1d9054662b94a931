"""Streaming overlap-aware diarization (diart-style) over a rolling buffer.

Every `step_seconds` of audio, the last `chunk` of the stream (5 s, shorter at the very start)
goes through the segmentation network; each local speaker gets one embedding from the audio
where it talks alone; the incremental constrained clustering maps local speakers to global ones
(never two of one chunk to the same speaker, labels never change); the chunk's activity on
global speakers joins the rolling set of chunk outputs. Frames older than `latency_seconds`
are then decided by the same overlap-add + speaker-count reconstruction as the offline pipeline,
over the chunks that covered them, and become segments — two at once where two people talk.

Same interface as `voiceflow.streaming.StreamingSession` (feed / finish / duration /
num_speakers), so the CLI and the inference pod drive either by configuration. Segments a call
returns are keyed by (speaker, start): a speaker's run still open at the decided edge comes back
with final=False and is sent again, longer, until it closes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from voiceflow import SAMPLE_RATE
from voiceflow.clustering.constrained import ConstrainedOnlineClusterer, ConstrainedOnlineConfig
from voiceflow.embedding import EmbeddingModel
from voiceflow.segmentation.aggregation import keep_top_speakers, overlap_add, speaker_count
from voiceflow.segmentation.local_embeddings import LocalEmbeddingConfig, embed_local_speakers
from voiceflow.segmentation.model import SegmentationModel
from voiceflow.segmentation.offline import global_activity
from voiceflow.segments import Segment, speaker_label
from voiceflow.streaming import StreamInput

EmbedFn = Callable[[np.ndarray], np.ndarray]
# chunks [B, T] -> hard local activity [B, T // frame, S]; injectable so a server can batch streams.
SegmentFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SegmentationStreamingConfig:
    step_seconds: float = 0.5
    latency_seconds: float = 5.0  # how long a frame waits for later chunks before it is decided
    # One embedding window per local speaker and step: the stream's cost is dominated by it.
    local: LocalEmbeddingConfig = field(default_factory=lambda: LocalEmbeddingConfig(max_windows=1))
    clustering: ConstrainedOnlineConfig = field(default_factory=ConstrainedOnlineConfig)

    def __post_init__(self) -> None:
        if not 0.1 <= self.step_seconds <= 5.0:
            raise ValueError("step_seconds must be within 0.1..5")
        if not self.step_seconds <= self.latency_seconds <= 30.0:
            raise ValueError("latency_seconds must be within step_seconds..30")


@dataclass
class _ChunkOutput:
    start_frame: int
    hard: np.ndarray  # [F, S] local activity
    labels: np.ndarray  # [S] global speaker per local speaker

    @property
    def end_frame(self) -> int:
        return self.start_frame + len(self.hard)


class SegmentationStreamingSession(StreamInput):
    def __init__(
        self,
        embed: EmbedFn,
        segmentation_model: SegmentationModel,
        config: SegmentationStreamingConfig | None = None,
        background_mean: np.ndarray | None = None,
        segment: SegmentFn | None = None,
    ) -> None:
        super().__init__()
        self.config = config or SegmentationStreamingConfig()
        self.embed = embed
        self.segmentation = segmentation_model
        self.segment: SegmentFn = segment or (lambda chunks: segmentation_model.activity(chunks).hard)
        self.background_mean = background_mean
        self.clusterer = ConstrainedOnlineClusterer(self.config.clustering)
        self.frame = segmentation_model.frame_samples
        self.chunk_samples = segmentation_model.chunk_samples
        self.step_samples = max(self.frame, round(self.config.step_seconds * SAMPLE_RATE / self.frame) * self.frame)
        self.latency_frames = round(self.config.latency_seconds * SAMPLE_RATE / self.frame)
        # `_buffer[0]` is stream sample `_buffer_start`; only the last chunk's worth is kept.
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0
        self._stepped_until = 0  # stream sample where the last chunk ended
        self._chunks: deque[_ChunkOutput] = deque()
        self._decided = 0  # frames [0, _decided) are final
        self._open: dict[int, int] = {}  # speaker -> first frame of its run still open at the decided edge
        self._closed: list[Segment] = []

    @classmethod
    def for_model(
        cls,
        model: EmbeddingModel,
        segmentation_model: SegmentationModel,
        embed: EmbedFn | None = None,
        config: SegmentationStreamingConfig | None = None,
        segment: SegmentFn | None = None,
    ) -> SegmentationStreamingSession:
        """A session on both models; `embed` and `segment` may route through cross-session batchers."""
        return cls(embed or model.embed, segmentation_model, config, model.background_mean, segment)

    @property
    def num_speakers(self) -> int:
        return self.clusterer.num_speakers

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """Push audio (float32, 16 kHz); returns the segments this call created or extended."""
        audio = self._accept(samples)
        self._buffer = np.concatenate([self._buffer, audio])
        while self._stepped_until + self.step_samples <= self._samples_fed:
            self._step(self._stepped_until + self.step_samples)
        return self._ledger.report(self._decide(self._latest_end_frame() - self.latency_frames))

    def finish(self) -> list[Segment]:
        """Flush the last partial step; returns the whole stream's diarization, all final."""
        if not self._finished:
            whole = (self._samples_fed // self.frame) * self.frame
            if whole > self._stepped_until and whole >= self.frame * 4:
                self._step(whole)
            self._decide(self._latest_end_frame(), closing=True)
            self._finished = True
        return sorted(self._closed, key=lambda s: (s.start, s.end, s.speaker))

    # -- internals -------------------------------------------------------------------------

    def _latest_end_frame(self) -> int:
        return self._chunks[-1].end_frame if self._chunks else 0

    def _step(self, end: int) -> None:
        start = max(0, end - self.chunk_samples)
        chunk = self._buffer[start - self._buffer_start : end - self._buffer_start]
        hard = np.asarray(self.segment(chunk[None, :]))[0]
        embeddings, valid = embed_local_speakers([chunk], [hard], self.embed, self.frame, self.config.local)
        if self.background_mean is not None and valid.any():
            # What every embedding shares dominates raw cosines between different speakers.
            embeddings = embeddings - self.background_mean * valid[..., None]
        speech = hard.sum(axis=0) * self.frame / SAMPLE_RATE
        labels = self.clusterer.assign(embeddings[0], valid[0], speech) if valid.any() else np.full(len(speech), -1)
        self._chunks.append(_ChunkOutput(start // self.frame, hard, labels))
        self._stepped_until = end
        # Keep the audio the next chunk needs (finish() may end one a single frame later), no more:
        # memory is bounded however long the stream runs.
        keep_from = max(0, end + self.frame - self.chunk_samples)
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[keep_from - self._buffer_start :].copy()
            self._buffer_start = keep_from

    def _decide(self, until: int, closing: bool = False) -> list[Segment]:
        """Decide frames [_decided, until); returns the segments that changed."""
        until = max(min(until, self._latest_end_frame()), self._decided)
        if until == self._decided and not closing:
            return []
        lo = self._decided
        covering = [c for c in self._chunks if c.end_frame > lo and c.start_frame < until]
        num_global = max(self.clusterer.num_speakers, 1)
        scores = overlap_add(
            [global_activity(c.hard, c.labels, num_global) for c in covering],
            [c.start_frame - lo for c in covering],
            until - lo,
        )
        count = speaker_count([c.hard for c in covering], [c.start_frame - lo for c in covering], until - lo)
        active = keep_top_speakers(scores, count)
        self._decided = until
        while self._chunks and self._chunks[0].end_frame <= until:
            self._chunks.popleft()
        return self._runs_to_segments(active, lo, closing)

    def _runs_to_segments(self, active: np.ndarray, lo: int, closing: bool) -> list[Segment]:
        seconds = self.frame / SAMPLE_RATE
        changed: list[Segment] = []
        for k in range(active.shape[1]):
            track = active[:, k]
            if k in self._open and not (track.size and track[0]):
                # The run ended exactly at the previous edge: it is final now.
                seg = Segment(self._open.pop(k) * seconds, lo * seconds, speaker_label(k), final=True)
                self._closed.append(seg)
                changed.append(seg)
            edges = np.flatnonzero(np.diff(np.concatenate([[False], track, [False]]).astype(np.int8)))
            for run_start, run_end in zip(edges[0::2], edges[1::2], strict=True):
                start = self._open.pop(k, lo + int(run_start)) if run_start == 0 else lo + int(run_start)
                end = lo + int(run_end)
                still_open = run_end == len(track) and not closing
                seg = Segment(start * seconds, end * seconds, speaker_label(k), final=not still_open)
                if still_open:
                    self._open[k] = start
                else:
                    self._closed.append(seg)
                changed.append(seg)
        if closing:
            for k, start in sorted(self._open.items()):
                seg = Segment(start * seconds, self._decided * seconds, speaker_label(k), final=True)
                self._closed.append(seg)
                changed.append(seg)
            self._open.clear()
        return sorted(changed, key=lambda s: (s.start, s.end, s.speaker))
